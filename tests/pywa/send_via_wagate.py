"""Sends one text with the real pywa client through wagate's Graph-compatible
endpoint. Usage: send_via_wagate.py <wagate base url> <api token> <phone id> <to>.
Driven by tests/it/send.rs (pywa_sends_through_wagate), run in .ci/run."""

import sys

from pywa import WhatsApp

base, token, phone_id, to = sys.argv[1:5]
wa = WhatsApp(phone_id=phone_id, token=token, api_version="23.0")
# pywa builds https://graph.facebook.com/v{api_version}; point it at wagate instead.
wa.api._session.base_url = f"{base}/v23.0"
sent = wa.send_message(to=to, text="hello from pywa")
print(f"sent {sent.id}")
assert sent.id.startswith("wamid."), sent.id
