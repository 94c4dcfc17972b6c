"""A real pywa bot as wagate's forwarding target (meta mode): pywa checks every
request's X-Hub-Signature-256 with its `app_secret` and dispatches updates to its
own handlers, which count what they see (typed handlers, and the raw-update
handler for updates pywa cannot type). Usage:
receive_behind_wagate.py <app secret>. Prints "port N" once listening on
127.0.0.1:0; GET /counts answers what was handled. Driven by tests/it/forward_pywa.rs
(forwarding_to_a_real_pywa_bot), run in .ci/run."""

import logging
import sys
import threading
from collections import Counter

from flask import Flask, jsonify, request
from pywa import WhatsApp
from werkzeug.serving import make_server

secret = sys.argv[1]
# pywa logs a traceback for each update it cannot type (see raw_handler); quiet.
logging.getLogger("pywa").setLevel(logging.CRITICAL)
logging.getLogger("werkzeug").setLevel(logging.WARNING)
app = Flask(__name__)
lock = threading.Lock()
messages = Counter()
raw_messages = Counter()
statuses = Counter()
others = Counter()
answers = Counter()

wa = WhatsApp(
    phone_id="106540352242922",
    token="unused",
    server=app,
    verify_token="unused-verify-token",
    app_secret=secret,
    validate_updates=True,
    # Count what wagate sends, not what pywa's own body-hash cache lets through.
    skip_duplicate_updates=False,
)


def count(counter, key):
    with lock:
        counter[key] += 1


def message_handler(_client, update):
    count(messages, update.id)


for register in (
    wa.on_message,
    wa.on_callback_button,
    wa.on_callback_selection,
    wa.on_flow_completion,
    wa.on_edited_message,
    wa.on_deleted_message,
    wa.on_phone_number_change,
    wa.on_identity_change,
):
    register()(message_handler)


@wa.on_message_status()
def status_handler(_client, update):
    count(statuses, f"{update.id} {update.status}")


for register in (
    wa.on_account_update,
    wa.on_template_status_update,
    wa.on_template_quality_update,
    wa.on_template_category_update,
    wa.on_user_marketing_preferences,
):
    register()(lambda _client, update: count(others, type(update).__name__))


@wa.on_raw_update()
def raw_handler(_client, update):
    # Every update pywa accepted (signature verified), typed or not: pywa 4.5 cannot
    # build typed updates from pre-2026 payloads (contacts without `user_id`).
    for entry in update.get("entry", []):
        for change in entry.get("changes", []):
            for m in change.get("value", {}).get("messages", []) or []:
                count(raw_messages, m.get("id"))


@app.after_request
def record_answer(response):
    if request.method == "POST":
        count(answers, response.status_code)
    return response


@app.get("/counts")
def counts():
    with lock:
        return jsonify(
            messages=dict(messages),
            raw_messages=dict(raw_messages),
            statuses=dict(statuses),
            others=dict(others),
            answers={str(k): v for k, v in answers.items()},
        )


server = make_server("127.0.0.1", 0, app, threaded=True)
print(f"port {server.port}", flush=True)
server.serve_forever()
