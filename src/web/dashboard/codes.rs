//! What common WhatsApp Cloud API error codes mean, for the failures pages. Kept
//! to codes whose meaning is documented by Meta (error-codes page) and seen in the
//! conformance corpus or the sender's retry rules; anything else shows Meta's own
//! title and details only.

const CODES: &[(i64, &str)] = &[
    (0, "Authentication exception: the access token could not be verified; get a new one."),
    (4, "App-level API call limit reached: slow down and retry later."),
    (100, "Invalid parameter (or the object, e.g. a media id, does not exist or is not accessible)."),
    (190, "The access token expired or is invalid: generate a new one (WHATSAPP_TOKEN)."),
    (368, "Temporarily blocked for policy violations on the WhatsApp Business account."),
    (130429, "Cloud API throughput reached for this number: retry later, more slowly."),
    (130472, "The user's number is part of a Meta experiment: the message was not delivered."),
    (131000, "Something went wrong on Meta's side: retry; if it persists, contact Meta support."),
    (131005, "Access denied: the app lacks a permission (whatsapp_business_messaging)."),
    (131008, "A required parameter is missing in the request."),
    (131009, "A parameter value is not valid: fix the request."),
    (131016, "Service temporarily unavailable: retry later."),
    (131021, "Sender and recipient are the same number."),
    (131026, "Message undeliverable: the recipient is not on WhatsApp, has an old app, or has not accepted the terms."),
    (131031, "The business account is locked or restricted (policy or verification)."),
    (131042, "Business eligibility or payment issue: check the payment method of the WABA."),
    (131045, "The phone number is not registered (certificate / registration problem)."),
    (131047, "More than 24 hours since the user last wrote: only a template can be sent (re-engagement)."),
    (131048, "Spam rate limit: too many messages from this number were blocked or flagged; check its quality."),
    (131049, "Not delivered to keep the ecosystem healthy (marketing message limits per user)."),
    (131051, "Unsupported message type (the user sent something the Cloud API does not support)."),
    (131052, "The media of an inbound message could not be downloaded."),
    (131053, "Media upload error: unsupported or damaged file."),
    (131056, "Pair rate limit: too many messages to the same user in a short time; wait before sending to them again."),
    (131057, "The business account is in maintenance mode (e.g. a throughput upgrade); retry in a minute."),
    (131060, "The message is currently unavailable to the Cloud API (e.g. a media placeholder)."),
    (132000, "Template parameter count does not match the template."),
    (132001, "The template does not exist in this language, or is not approved."),
    (132015, "The template is paused for low quality (a held message that was dropped)."),
    (133010, "The phone number is not registered on the Cloud API."),
];

/// The meaning of a Meta error code, when it is one of the known ones.
pub fn meaning(code: Option<i64>) -> Option<&'static str> {
    let code = code?;
    CODES
        .binary_search_by_key(&code, |(c, _)| *c)
        .ok()
        .map(|i| CODES[i].1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_sorted_and_found() {
        assert!(super::CODES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(super::meaning(Some(131047)).unwrap().contains("24 hours"));
        assert_eq!(super::meaning(Some(1)), None);
        assert_eq!(super::meaning(None), None);
    }
}
