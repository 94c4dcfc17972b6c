//! Tests of `wagate::events::parse` against the conformance corpus.

use serde_json::{json, Value};
use wagate::events::parse::*;

const PAYLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/payloads");
const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/manifest.json");

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{PAYLOADS}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn items(name: &str) -> Vec<Item> {
    parse_delivery(&load(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn messages(items: &[Item]) -> Vec<&InboundMessage> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Message { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

fn statuses(items: &[Item]) -> Vec<&StatusUpdate> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Status { status, .. } => Some(status),
            _ => None,
        })
        .collect()
}

fn changes(items: &[Item]) -> Vec<(&ItemMeta, &AccountEvent)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Change { meta, event } => Some((meta, event)),
            _ => None,
        })
        .collect()
}

fn contacts(items: &[Item]) -> Vec<&ContactInfo> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Contact { contact, .. } => Some(contact),
            _ => None,
        })
        .collect()
}

/// The one message of a single-message payload.
fn message(name: &str) -> InboundMessage {
    let all = items(name);
    let m = messages(&all);
    assert_eq!(m.len(), 1, "{name}");
    m[0].clone()
}

fn content(name: &str) -> MessageContent {
    message(name).content
}

fn status(name: &str) -> StatusUpdate {
    let all = items(name);
    let s = statuses(&all);
    assert_eq!(s.len(), 1, "{name}");
    s[0].clone()
}

fn change(name: &str) -> (ItemMeta, AccountEvent) {
    let all = items(name);
    let c = changes(&all);
    assert_eq!(c.len(), 1, "{name}");
    (c[0].0.clone(), c[0].1.clone())
}

fn manifest_files() -> Vec<String> {
    let m: Value = serde_json::from_slice(&std::fs::read(MANIFEST).unwrap()).unwrap();
    let cases = m["cases"].as_array().unwrap();
    cases
        .iter()
        .map(|c| c["file"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_corpus_payload_parses_and_round_trips() {
    let files = manifest_files();
    assert!(files.len() >= 54, "manifest lists {} cases", files.len());
    for f in &files {
        let all = items(f);
        assert!(!all.is_empty(), "{f} yields no item");
        let kinds = (
            messages(&all).len(),
            statuses(&all).len(),
            changes(&all).len(),
        );
        if f.starts_with("msg_") {
            assert!(kinds.0 >= 1 && kinds.2 == 0, "{f}: {kinds:?}");
        } else if f.starts_with("status_") || f.starts_with("batch_") {
            assert!(kinds.1 >= 1 && kinds.2 == 0, "{f}: {kinds:?}");
        } else {
            assert_eq!(kinds, (0, 0, 1), "{f}");
        }
        for item in &all {
            // Stored as JSON in sled and served by the API: must survive a round trip.
            let stored = serde_json::to_vec(item).unwrap();
            let back: Item = serde_json::from_slice(&stored).unwrap();
            assert_eq!(&back, item, "{f}");
            // Every message/status carries a wire timestamp in this corpus.
            if !matches!(item, Item::Contact { .. }) {
                assert!(
                    item.timestamp().is_some() || f.starts_with("value_errors"),
                    "{f}"
                );
            }
            assert!(!item.meta().waba_id.is_empty());
        }
    }
}

#[test]
fn text_messages() {
    let m = message("msg_text.json");
    assert_eq!(
        m.id,
        "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBBMQA="
    );
    assert_eq!(m.from.as_deref(), Some("16505551234"));
    assert_eq!(m.contact_id, "16505551234");
    assert_eq!(m.timestamp, 1749416383);
    assert_eq!(m.msg_type, "text");
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "Does it come in another color?".into()
        }
    );
    assert_eq!(m.context, None);
    assert!(m.errors.is_empty() && m.referral.is_none());
    assert_eq!(m.raw["text"]["body"], "Does it come in another color?");

    let all = items("msg_text.json");
    assert_eq!(all.len(), 2);
    let Item::Message { meta, .. } = &all[1] else {
        panic!("contact first, then message")
    };
    assert_eq!(meta.waba_id, "102290129340398");
    assert_eq!(meta.field, "messages");
    assert_eq!(meta.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(meta.display_phone_number.as_deref(), Some("15550783881"));
    assert_eq!(
        contacts(&all)[0].profile_name.as_deref(),
        Some("Sheena Nelson")
    );

    // Escaped BMP and astral characters (surrogate pair) decode; key order (text before type).
    let body =
        "\u{5d5}\u{5d6}\u{5d4} \u{5d5}\u{5d6}\u{5d4} \u{5df}\u{5d6}\u{5d4} caf\u{e9} \u{1f62e}";
    assert_eq!(
        content("msg_text_unicode_real_capture.json"),
        MessageContent::Text { body: body.into() }
    );
}

#[test]
fn media_messages() {
    let MessageContent::Media {
        media_type,
        id,
        mime_type,
        sha256,
        caption,
        filename,
        url,
        voice,
        animated,
        file_size,
    } = content("msg_image_real_capture_with_url_bsuid.json")
    else {
        panic!("not media")
    };
    assert_eq!(media_type, "image");
    assert_eq!(id.as_deref(), Some("1000000000000003"));
    assert_eq!(mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        sha256.as_deref(),
        Some("HCaHabZ6gVq4V/SPmMzBTWkoEUI8NgjfVshSveeWM3c=")
    );
    assert_eq!(caption.as_deref(), Some("Hola quiero un caf\u{e9}"));
    assert!(url.unwrap().starts_with(
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1000000000000003"
    ));
    assert_eq!(
        (filename, voice, animated, file_size),
        (None, None, None, None)
    );

    let m = message("msg_image_real_capture_with_url_bsuid.json");
    assert_eq!(m.from_user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.contact_id, "16505551234", "from wins over from_user_id");

    let media = |f: &str| match content(f) {
        MessageContent::Media {
            media_type,
            id,
            mime_type,
            sha256,
            caption,
            filename,
            voice,
            animated,
            ..
        } => (
            media_type,
            id.unwrap(),
            mime_type.unwrap(),
            sha256.unwrap(),
            caption,
            filename,
            voice,
            animated,
        ),
        other => panic!("{f}: {other:?}"),
    };
    let img = media("msg_image_roundtrip.json");
    assert_eq!(
        (img.1.as_str(), img.2.as_str()),
        ("1003383421387256", "image/png")
    );
    assert_eq!(img.3, "2WrsXqADRsu8+ncP4RuoxYTIrQk8rfcqdV/4oyVWCHE=");
    assert_eq!(img.4.as_deref(), Some("Taj Mahal"));
    let voice = media("msg_audio_voice.json");
    assert_eq!(
        (voice.0.as_str(), voice.1.as_str(), voice.6),
        ("audio", "1000000000000005", Some(true))
    );
    assert_eq!(voice.2, "audio/ogg; codecs=opus");
    let audio = media("msg_audio_file.json");
    assert_eq!((audio.0.as_str(), audio.6), ("audio", Some(false)));
    let video = media("msg_video.json");
    assert_eq!(
        (video.0.as_str(), video.2.as_str(), video.4.as_deref()),
        ("video", "video/mp4", Some("caption"))
    );
    let doc = media("msg_document.json");
    assert_eq!(
        (doc.0.as_str(), doc.1.as_str(), doc.2.as_str()),
        ("document", "622684793477189", "application/pdf")
    );
    assert_eq!(
        (doc.4.as_deref(), doc.5.as_deref()),
        (Some("my receipt"), Some("receipt.pdf"))
    );
    assert_eq!(doc.3, "V5OPpLD/gEG6Xjg0MbmQDLFgcKsL+j5LfY4ny/pZ4MY=");
    let sticker = media("msg_sticker.json");
    assert_eq!(
        (sticker.0.as_str(), sticker.2.as_str(), sticker.7),
        ("sticker", "image/webp", Some(true))
    );
}

#[test]
fn location_contacts_order_button_reaction() {
    assert_eq!(
        content("msg_location.json"),
        MessageContent::Location {
            latitude: Some(37.4611978),
            longitude: Some(-122.2164385),
            name: Some("Facebook HQ".into()),
            address: Some("1 Hacker Way, Menlo Park, CA 94025".into()),
            url: Some("https://maps.google.com/?cid=2000000000000000000".into()),
        }
    );
    let MessageContent::Contacts { contacts } = content("msg_contacts.json") else {
        panic!()
    };
    assert_eq!(contacts.as_array().unwrap().len(), 2);
    assert_eq!(contacts[0]["name"]["formatted_name"], "Chandler Bing");
    assert_eq!(contacts[1]["phones"][0].get("wa_id"), None);

    let MessageContent::Order {
        catalog_id,
        text,
        product_items,
    } = content("msg_order.json")
    else {
        panic!()
    };
    assert_eq!(
        (catalog_id.as_deref(), text.as_deref()),
        (Some("194836987003835"), Some("Love these!"))
    );
    assert_eq!(product_items.as_array().unwrap().len(), 2);
    assert_eq!(product_items[0]["quantity"], 2);
    assert_eq!(product_items[1]["item_price"].as_f64(), Some(7.99));

    assert_eq!(
        content("msg_button_template_quick_reply.json"),
        MessageContent::Button {
            payload: Some("callback_data".into()),
            text: Some("title".into())
        }
    );
    let reacted = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBIwMDAwMDAwMDAwMDAwMDBCMTYA";
    assert_eq!(
        content("msg_reaction.json"),
        MessageContent::Reaction {
            message_id: Some(reacted.into()),
            emoji: Some("\u{1f62e}".into())
        }
    );
    assert_eq!(
        content("msg_reaction_removed.json"),
        MessageContent::Reaction {
            message_id: Some(reacted.into()),
            emoji: None
        }
    );
}

#[test]
fn interactive_replies() {
    let i = |f: &str| match content(f) {
        MessageContent::Interactive {
            reply_type,
            id,
            title,
            description,
            response_json,
            body,
        } => (reply_type, id, title, description, response_json, body),
        other => panic!("{f}: {other:?}"),
    };
    let b = i("msg_interactive_button_reply.json");
    assert_eq!(b.0.as_deref(), Some("button_reply"));
    assert_eq!(
        (b.1.as_deref(), b.2.as_deref(), b.3),
        (Some("cancel-button"), Some("Cancel"), None)
    );
    let l = i("msg_interactive_list_reply.json");
    assert_eq!(l.0.as_deref(), Some("list_reply"));
    assert_eq!(
        (l.1.as_deref(), l.2.as_deref()),
        (Some("priority_express"), Some("Priority Mail Express"))
    );
    assert_eq!(l.3.as_deref(), Some("Next Day to 2 Days"));
    let n = i("msg_interactive_nfm_reply_flow.json");
    assert_eq!(
        (n.0.as_deref(), n.5.as_deref()),
        (Some("nfm_reply"), Some("Sent"))
    );
    let flow: Value = serde_json::from_str(&n.4.unwrap()).unwrap();
    assert_eq!(flow["flow_token"], "FAKE_FLOW_TOKEN");
    assert_eq!(flow["delivery_rating"], "4");

    let ctx = message("msg_interactive_button_reply.json")
        .context
        .unwrap();
    assert_eq!(ctx.from.as_deref(), Some("15550783881"));
    assert_eq!(
        ctx.id.as_deref(),
        Some("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBIwMDAwMDAwMDAwMDAwMDBCMTIA")
    );
}

#[test]
fn system_unsupported_edit_revoke() {
    let m = message("msg_system_user_changed_number.json");
    assert_eq!(
        m.content,
        MessageContent::System {
            body: Some("User Sheena Nelson changed from 16505551234 to 16505559876".into()),
            system_type: Some("user_changed_number".into()),
            wa_id: Some("16505559876".into()),
            new_wa_id: None,
            identity: None,
            customer: None,
        }
    );
    assert_eq!(
        items("msg_system_user_changed_number.json").len(),
        1,
        "no contacts[] on system"
    );

    for (f, code, kind) in [
        ("msg_unsupported.json", 131051, "edit"),
        (
            "msg_unsupported_131060_unavailable.json",
            131060,
            "media_placeholder",
        ),
    ] {
        let m = message(f);
        assert_eq!(m.msg_type, "unsupported");
        assert_eq!(
            m.content,
            MessageContent::Unsupported {
                unsupported_type: Some(kind.into())
            }
        );
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].code, Some(code));
        assert!(
            m.errors[0].title.is_some() && m.errors[0].details.is_some(),
            "{f}"
        );
    }
    assert_eq!(
        message("msg_unsupported.json").errors[0].details.as_deref(),
        Some("Message type is currently not supported.")
    );

    let MessageContent::Edit {
        original_message_id,
        edited_type,
        content: edited,
    } = content("msg_edit.json")
    else {
        panic!()
    };
    assert_eq!(
        original_message_id.as_deref(),
        Some("wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBCQwA=")
    );
    assert_eq!(edited_type.as_deref(), Some("image"));
    let MessageContent::Media { caption, id, .. } = *edited else {
        panic!("{edited:?}")
    };
    assert_eq!(
        (caption.as_deref(), id.as_deref()),
        (Some("Updated image caption"), Some("1000000000000023"))
    );
    assert_eq!(
        message("msg_edit.json").context,
        None,
        "edit.message.context is not the message's context"
    );

    assert_eq!(
        content("msg_revoke.json"),
        MessageContent::Revoke {
            original_message_id: Some(
                "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBCQwA=".into()
            )
        }
    );
}

#[test]
fn context_forwarded_referral() {
    let ctx = message("msg_text_reply_context.json").context.unwrap();
    assert_eq!(
        ctx.id.as_deref(),
        Some("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBIwMDAwMDAwMDAwMDAwMDBCMjAA")
    );
    assert_eq!(ctx.from.as_deref(), Some("15550783881"));
    assert_eq!((ctx.forwarded, ctx.frequently_forwarded), (None, None));

    let ctx = message("msg_text_forwarded.json").context.unwrap();
    assert_eq!(
        (ctx.forwarded, ctx.frequently_forwarded, ctx.id),
        (Some(true), None, None)
    );
    let ctx = message("msg_text_frequently_forwarded.json")
        .context
        .unwrap();
    assert_eq!(
        (ctx.forwarded, ctx.frequently_forwarded),
        (None, Some(true))
    );
    assert_eq!(
        message("msg_audio_file.json").context.unwrap().forwarded,
        Some(true)
    );

    let m = message("msg_text_ctwa_referral.json");
    let r = m.referral.unwrap();
    assert_eq!(r["source_type"], "ad");
    assert_eq!(
        r["ctwa_clid"],
        "Aff-FAKE-CLICK-ID-0000000000000000000000000000000000000000"
    );
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "Can I get more info about this?".into()
        }
    );
}

#[test]
fn bsuid_only_user() {
    let all = items("msg_text_bsuid_username_no_phone.json");
    let c = contacts(&all);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].wa_id, None);
    assert_eq!(c[0].user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(c[0].username.as_deref(), Some("@sheena"));
    assert_eq!(c[0].profile_name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(c[0].contact_id, "US.13491208655302741918");
    let m = message("msg_text_bsuid_username_no_phone.json");
    assert_eq!(m.from, None);
    assert_eq!(m.contact_id, "US.13491208655302741918");
    assert_eq!(
        m.username.as_deref(),
        Some("@sheena"),
        "joined from contacts[] by user_id"
    );

    let c = contacts(&items("msg_image_real_capture_with_url_bsuid.json"))[0].clone();
    assert_eq!(
        (c.wa_id.as_deref(), c.user_id.as_deref()),
        (Some("16505551234"), Some("US.13491208655302741918"))
    );
    assert_eq!(c.contact_id, "16505551234");
}

#[test]
fn batches_yield_every_item() {
    let all = items("batch_one_change_three_statuses.json");
    assert_eq!(all.len(), 3);
    let s = statuses(&all);
    let got: Vec<_> = s.iter().map(|s| (s.status.as_str(), s.timestamp)).collect();
    assert_eq!(
        got,
        [
            ("delivered", 1760659300),
            ("read", 1760659301),
            ("sent", 1760659302)
        ]
    );
    assert_eq!(
        s[2].pricing.as_ref().unwrap().category.as_deref(),
        Some("utility")
    );

    let all = items("batch_two_entries_messages_and_statuses.json");
    assert_eq!(all.len(), 6, "2 contacts + 3 messages + 1 status");
    assert_eq!(
        (
            messages(&all).len(),
            statuses(&all).len(),
            contacts(&all).len()
        ),
        (3, 1, 2)
    );
    let bodies: Vec<_> = messages(&all)
        .iter()
        .map(|m| match &m.content {
            MessageContent::Text { body } => body.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies, ["first", "second", "other number"]);
    let metas: Vec<_> = all
        .iter()
        .map(|i| {
            (
                i.meta().waba_id.clone(),
                i.meta().phone_number_id.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        metas[0],
        ("102290129340398".to_string(), "106540352242922".to_string())
    );
    assert_eq!(
        metas[5],
        ("102290129340399".to_string(), "106540352242923".to_string())
    );
    assert_eq!(
        all[5].meta().display_phone_number.as_deref(),
        Some("15550783882")
    );
}

#[test]
fn statuses_parse() {
    let s = status("status_sent_pmp_marketing.json");
    assert_eq!(
        (s.status.as_str(), s.timestamp, s.recipient_id.as_deref()),
        ("sent", 1750030073, Some("16505551234"))
    );
    let p = s.pricing.unwrap();
    assert_eq!(
        (
            p.billable,
            p.pricing_model.as_deref(),
            p.category.as_deref(),
            p.pricing_type.as_deref()
        ),
        (Some(true), Some("PMP"), Some("marketing"), Some("regular"))
    );
    let c = s.conversation.unwrap();
    assert_eq!(
        (
            c.id.as_deref(),
            c.origin_type.as_deref(),
            c.expiration_timestamp
        ),
        (
            Some("72b14d6bd5407799e66f64d1b338e567"),
            Some("marketing"),
            Some(1750116480)
        )
    );

    let s = status("status_sent_v24_minimal.json");
    assert_eq!((s.pricing, s.conversation, s.errors.len()), (None, None, 0));

    let s = status("status_delivered_cbp_legacy_2023.json");
    assert_eq!(
        s.conversation.unwrap().origin_type.as_deref(),
        Some("user_initiated")
    );
    assert_eq!(s.pricing.unwrap().pricing_type, None);
    let p = status("status_read_pmp_free_customer_service.json")
        .pricing
        .unwrap();
    assert_eq!(
        (p.billable, p.pricing_type.as_deref()),
        (Some(false), Some("free_customer_service"))
    );

    for (f, code) in [
        ("status_failed_131049.json", 131049),
        ("status_failed_130472_experiment.json", 130472),
        ("status_failed_131047_reengagement.json", 131047),
    ] {
        let s = status(f);
        assert_eq!(s.status, "failed");
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].code, Some(code));
        assert!(
            s.errors[0].href.is_some() && s.errors[0].details.is_some(),
            "{f}"
        );
    }
    let e = &status("status_failed_131047_reengagement.json").errors[0];
    assert_eq!(e.title.as_deref(), Some("Re-engagement message"));

    assert_eq!(status("status_played_voice.json").status, "played");
    let s = status("status_sent_biz_opaque_callback_data.json");
    assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("order-4711"));
    assert_eq!(
        s.conversation.unwrap().expiration_timestamp,
        Some(1698339900)
    );

    let all = items("status_read_v25_bsuid_username.json");
    assert_eq!(all.len(), 2, "status and contact");
    let s = statuses(&all)[0];
    assert_eq!(
        s.recipient_user_id.as_deref(),
        Some("US.13491208655302741918")
    );
    assert_eq!(
        s.raw["parent_recipient_user_id"],
        "US.ENT.11815799212886844830"
    );
    assert_eq!(contacts(&all)[0].username.as_deref(), Some("@testusername"));
    assert_eq!(
        status("status_sent_v25_bsuid.json")
            .recipient_user_id
            .as_deref(),
        Some("US.13491208655302741918")
    );
}

#[test]
fn other_fields_become_changes() {
    let cases = [
        ("field_message_template_status_update_approved.json", "message_template_status_update", 1751247548, "template 'order_confirmation' APPROVED"),
        ("field_message_template_status_update_rejected.json", "message_template_status_update", 1751247548, "template 'abandoned_cart' REJECTED (INVALID_FORMAT)"),
        ("field_message_template_quality_update.json", "message_template_quality_update", 1674864290, "template 'welcome_template' quality GREEN -> YELLOW"),
        ("field_template_category_update.json", "template_category_update", 1750344882, "template 'my_message_template' category -> MARKETING"),
        ("field_phone_number_quality_update_throughput_upgrade.json", "phone_number_quality_update", 1748454394, "phone 15550783881 THROUGHPUT_UPGRADE (limit TIER_UNLIMITED)"),
        ("field_phone_number_quality_update_limit_change.json", "phone_number_quality_update", 1748454500, "phone 15550783881 ONBOARDING (limit TIER_2K)"),
        ("field_account_update_volume_tier.json", "account_update", 1743451903, "account VOLUME_BASED_PRICING_TIER_UPDATE: tier 25000001:50000000 UTILITY"),
        ("field_account_update_restriction.json", "account_update", 1641330498, "account ACCOUNT_RESTRICTION: RESTRICTED_BIZ_INITIATED_MESSAGING, RESTRICTED_ADD_PHONE_NUMBER_ACTION"),
        ("field_account_update_disabled.json", "account_update", 1743451903, "account DISABLED_UPDATE: REINSTATE"),
        ("field_user_preferences_marketing_stop.json", "user_preferences", 1731705721, "user 16505551234 marketing_messages: stop"),
    ];
    for (f, field, ts, summary) in cases {
        let all = items(f);
        assert_eq!(all.len(), 1, "{f}");
        let (meta, ev) = changes(&all)[0];
        assert_eq!(
            (meta.field.as_str(), ev.field.as_str()),
            (field, field),
            "{f}"
        );
        assert_eq!(ev.timestamp, Some(ts), "{f}");
        assert_eq!(all[0].timestamp(), Some(ts), "{f}");
        assert_eq!(ev.summary.as_deref(), Some(summary), "{f}");
        let body: Value = serde_json::from_slice(&load(f)).unwrap();
        assert_eq!(
            ev.value, body["entry"][0]["changes"][0]["value"],
            "{f}: value kept verbatim"
        );
    }
    let (meta, _) = change("field_template_category_update.json");
    assert_eq!(meta.waba_id, "57438975935");
    let (meta, _) = change("field_user_preferences_marketing_stop.json");
    assert_eq!(meta.phone_number_id.as_deref(), Some("106540352242922"));
    let (meta, _) = change("field_phone_number_quality_update_limit_change.json");
    assert_eq!(meta.display_phone_number.as_deref(), Some("15550783881"));

    // value.errors[] of a messages change.
    let all = items("value_errors_130429.json");
    let (meta, ev) = changes(&all)[0];
    assert_eq!(
        (all.len(), meta.field.as_str(), ev.timestamp),
        (1, "messages", None)
    );
    assert_eq!(ev.summary.as_deref(), Some("error 130429: Rate limit hit"));
    assert_eq!(ev.value["errors"][0]["code"], 130429);
    assert_eq!(ev.value["metadata"]["phone_number_id"], "106540352242922");

    // An unknown field is kept verbatim.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "time": 5, "changes": [
        {"field": "brand_new_field", "value": {"event": "SOMETHING", "x": [1, 2]}}]}]});
    let all = parse_delivery(body.to_string().as_bytes()).unwrap();
    let (meta, ev) = changes(&all)[0];
    assert_eq!(
        (meta.field.as_str(), ev.timestamp),
        ("brand_new_field", Some(5))
    );
    assert_eq!(ev.value, body["entry"][0]["changes"][0]["value"]);
    assert_eq!(ev.summary.as_deref(), Some("brand_new_field SOMETHING"));
}

fn wrap(value: Value) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "9", "changes": [{"field": "messages", "value": value}]}]})
        .to_string()
        .into_bytes()
}

#[test]
fn odd_messages_values() {
    let md = json!({"phone_number_id": "1", "display_phone_number": "2"});
    // Nothing known or unknown in it: nothing to do.
    assert_eq!(
        parse_delivery(&wrap(
            json!({"messaging_product": "whatsapp", "metadata": md})
        ))
        .unwrap(),
        []
    );
    assert_eq!(parse_delivery(&wrap(json!({"messages": []}))).unwrap(), []);
    // A key this parser does not know (message_echoes is read now): one verbatim Change, next to what it does know.
    let v = json!({"metadata": md, "future_echoes": [{"id": "x"}], "statuses": [{"id": "w", "status": "sent", "timestamp": 7}]});
    let all = parse_delivery(&wrap(v.clone())).unwrap();
    assert_eq!((statuses(&all).len(), changes(&all).len()), (1, 1));
    assert_eq!(changes(&all)[0].1.value, v);
    let summary = changes(&all)[0].1.summary.clone();
    assert_eq!(
        summary.as_deref(),
        Some("messages change, keys not read: future_echoes")
    );
    assert_eq!(
        all[0].timestamp(),
        Some(7),
        "numeric timestamps are read too"
    );
    // Elements without an id become Changes narrowed to that element; a type never seen is Unknown.
    let v = json!({"metadata": md, "messages": [{"type": "text", "text": {"body": "no id"}}, {"id": "m2", "type": "hologram", "hologram": {}}], "statuses": [{"id": "s"}], "contacts": [7]});
    let all = parse_delivery(&wrap(v)).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(changes(&all).len(), 3);
    assert_eq!(
        changes(&all)[1].1.value,
        json!({"metadata": md, "messages": [{"type": "text", "text": {"body": "no id"}}]})
    );
    let m = messages(&all)[0];
    assert_eq!(
        (
            m.content.clone(),
            m.msg_type.as_str(),
            m.contact_id.as_str()
        ),
        (MessageContent::Unknown {}, "hologram", "unknown")
    );
    assert_eq!(all[2].timestamp(), None);
    let summary = changes(&all)[1].1.summary.clone();
    assert_eq!(summary.as_deref(), Some("unreadable messages[] element"));
    // A known type without its object, and a value that is not an object.
    let all = parse_delivery(&wrap(json!({"messages": [{"id": "m3", "type": "image"}]}))).unwrap();
    assert_eq!(messages(&all)[0].content, MessageContent::Unknown {});
    let all = parse_delivery(&wrap(json!({"messages": {"id": "m4"}}))).unwrap();
    let summary = changes(&all)[0].1.summary.clone();
    assert_eq!(
        summary.as_deref(),
        Some("messages change, keys not read: messages")
    );
    let all = parse_delivery(&wrap(json!("surprise"))).unwrap();
    assert_eq!(changes(&all)[0].1.value, json!("surprise"));
}

#[test]
fn not_json_and_wrong_shape() {
    for bad in [
        &b""[..],
        b"{",
        b"not json",
        b"{\"entry\":[]",
        &[0xff, 0xfe, 0x00],
        b"[1,2,,]",
    ] {
        assert!(
            matches!(parse_delivery(bad), Err(ParseError::NotJson(_))),
            "{bad:?}"
        );
    }
    let shapes = [
        json!([]),
        json!("whatsapp_business_account"),
        json!({}),
        json!({"entry": []}),
        json!({"object": "page", "entry": []}),
        json!({"object": "instagram", "entry": [{"id": "1", "changes": []}]}),
        json!({"object": "whatsapp_business_account"}),
        json!({"object": "whatsapp_business_account", "entry": {}}),
        json!({"object": "whatsapp_business_account", "entry": [1]}),
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}),
        json!({"object": "whatsapp_business_account", "entry": [{"changes": []}]}),
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"value": {}}]}]}),
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages"}]}]}),
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": ["x"]}]}),
    ];
    for s in shapes {
        let r = parse_delivery(s.to_string().as_bytes());
        assert!(matches!(r, Err(ParseError::NotMetaShape(_))), "{s}: {r:?}");
    }
    let err = parse_delivery(b"{\"object\":\"page\",\"entry\":[]}").unwrap_err();
    assert!(
        err.to_string()
            .contains("not a WhatsApp Business Account delivery"),
        "{err}"
    );
    assert_eq!(
        parse_delivery(b"{\"object\":\"whatsapp_business_account\",\"entry\":[]}").unwrap(),
        []
    );
}

fn keys(items: &[Item]) -> Vec<Option<Vec<u8>>> {
    items.iter().map(Item::dedup_key).collect()
}

#[test]
fn dedup_keys() {
    // Message: the same message carried by another body (batched, other envelope) has the same key.
    let single = items("msg_text.json");
    assert_eq!(keys(&single)[0], None, "contacts are not deduplicated");
    let key = single[1].dedup_key().unwrap();
    assert_eq!(
        key,
        [
            &b"m\0"[..],
            b"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTAwMDAwMDAwMDAwMDAwMDBBMQA="
        ]
        .concat()
    );
    let body: Value = serde_json::from_slice(&load("msg_text.json")).unwrap();
    let msg = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    let other = json!({"id": "wamid.other", "from": "1", "timestamp": "1", "type": "text", "text": {"body": "x"}});
    let batched = parse_delivery(&wrap(json!({"messages": [other, msg]}))).unwrap();
    assert_eq!(batched[1].dedup_key(), Some(key));
    assert_ne!(batched[0].dedup_key(), batched[1].dedup_key());

    // Status: same id, different status -> different keys; same id and status across bodies -> same key.
    let sent = items("status_sent_pmp_free_customer_service.json")[0]
        .dedup_key()
        .unwrap();
    let delivered = items("status_delivered_pmp_free_customer_service.json")[0]
        .dedup_key()
        .unwrap();
    let read = items("status_read_pmp_free_customer_service.json")[0]
        .dedup_key()
        .unwrap();
    assert!(sent != delivered && delivered != read && sent != read);
    assert_eq!(
        read,
        [
            &b"s\0"[..],
            b"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBIwMDAwMDAwMDAwMDAwMDBDMDIA",
            b"\0read"
        ]
        .concat()
    );
    assert_eq!(
        keys(&items("batch_one_change_three_statuses.json"))[1],
        Some(read)
    );
    assert_eq!(
        keys(&items("status_sent_pmp_marketing.json")),
        keys(&items("status_sent_v24_minimal.json"))
    );

    // Change: independent of key order and whitespace, dependent on content and WABA.
    for f in manifest_files()
        .iter()
        .filter(|f| f.starts_with("field_") || f.starts_with("value_"))
    {
        let raw = load(f);
        let reserialized =
            serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&raw).unwrap()).unwrap();
        assert_ne!(raw, reserialized);
        let k = keys(&items(f));
        assert_eq!(k, keys(&parse_delivery(&reserialized).unwrap()), "{f}");
        assert_eq!(k[0].as_ref().unwrap().len(), 2 + 64);
        assert!(k[0].as_ref().unwrap().starts_with(b"c\0"));
    }
    let body = |waba: &str, time: i64, ev: &str| {
        let v = json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "time": time, "changes": [
            {"field": "message_template_status_update", "value": {"event": ev, "message_template_id": 1}}]}]});
        keys(&parse_delivery(v.to_string().as_bytes()).unwrap())[0]
            .clone()
            .unwrap()
    };
    let base = body("1", 100, "APPROVED");
    let reordered = br#"{"entry":[{"changes":[{"value":{"message_template_id":1,"event":"APPROVED"},"field":"message_template_status_update"}],"time":100,"id":"1"}],"object":"whatsapp_business_account"}"#;
    assert_eq!(
        keys(&parse_delivery(reordered).unwrap())[0],
        Some(base.clone())
    );
    assert_ne!(base, body("1", 100, "PAUSED"));
    assert_ne!(
        base,
        body("2", 100, "APPROVED"),
        "same event on another WABA"
    );
    // Field and value decide, not the envelope's time: Meta's retry of the same
    // event in another body (with another `entry.time`) is one item.
    assert_eq!(base, body("1", 200, "APPROVED"), "redelivered later");
}

#[test]
fn canonical_json_sorts_keys() {
    let a: Value =
        serde_json::from_str(r#"{"b":1,"a":{"d":[1,{"z":null,"y":"\u00e9"}],"c":true}}"#).unwrap();
    let b: Value =
        serde_json::from_str(r#"{"a":{"c":true,"d":[1,{"y":"é","z":null}]},"b":1}"#).unwrap();
    let expected = r#"{"a":{"c":true,"d":[1,{"y":"é","z":null}]},"b":1}"#;
    assert_eq!(canonical_json(&a), expected.as_bytes());
    assert_eq!(canonical_json(&a), canonical_json(&b));
}

#[test]
fn status_order() {
    let order = ["sent", "delivered", "read", "played"];
    for (i, a) in order.iter().enumerate() {
        assert!(status_supersedes(None, a));
        assert!(status_supersedes(Some(a), "failed"), "failed replaces {a}");
        assert!(!status_supersedes(Some("failed"), a), "failed is terminal");
        assert!(
            !status_supersedes(Some(a), "deleted"),
            "unknown never replaces {a}"
        );
        assert!(
            status_supersedes(Some("deleted"), a),
            "{a} replaces an unknown status"
        );
        for (j, b) in order.iter().enumerate() {
            assert_eq!(status_supersedes(Some(a), b), j > i, "{a} -> {b}");
        }
    }
    assert!(
        status_supersedes(Some("sent"), "read"),
        "read without delivered"
    );
    assert!(
        !status_supersedes(Some("read"), "delivered"),
        "late delivered keeps read"
    );
    assert!(!status_supersedes(Some("failed"), "failed"));
    assert!(!status_supersedes(Some("deleted"), "warning"));
    assert!(status_supersedes(None, "whatever"));
    assert!(
        status_rank("sent") < status_rank("delivered")
            && status_rank("read") < status_rank("played")
    );
    assert_eq!(status_rank("nope"), 0);
}

/// xorshift64*: a tiny deterministic generator, enough to shake the parser.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn exercise(body: &[u8]) {
    if let Ok(all) = parse_delivery(body) {
        for item in all {
            let _ = (item.dedup_key(), item.timestamp());
            let back: Item = serde_json::from_slice(&serde_json::to_vec(&item).unwrap()).unwrap();
            assert_eq!(back, item);
        }
    }
}

fn mutate(v: &mut Value, rng: &mut Rng, depth: u32) {
    let replacement = || -> [Value; 9] {
        [
            json!(null),
            json!(true),
            json!(-1),
            json!(1.5e300),
            json!(""),
            json!("1760659300"),
            json!([]),
            json!({}),
            json!([{"id": 1}]),
        ]
    };
    match v {
        Value::Object(m) if !m.is_empty() && depth < 12 => {
            let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
            match rng.below(4) {
                0 => *m.get_mut(&k).unwrap() = replacement()[rng.below(9)].clone(),
                1 => drop(m.remove(&k)),
                _ => mutate(m.get_mut(&k).unwrap(), rng, depth + 1),
            }
        }
        Value::Array(a) if !a.is_empty() && depth < 12 => {
            let i = rng.below(a.len());
            match rng.below(4) {
                0 => a[i] = replacement()[rng.below(9)].clone(),
                1 => a.push(a[i].clone()),
                _ => mutate(&mut a[i], rng, depth + 1),
            }
        }
        _ => *v = replacement()[rng.below(9)].clone(),
    }
}

#[test]
fn fuzz_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for f in manifest_files() {
        let raw = load(&f);
        for cut in 0..raw.len() {
            exercise(&raw[..cut]);
        }
        for _ in 0..200 {
            let mut b = raw.clone();
            for _ in 0..=rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            exercise(&b);
        }
        let value: Value = serde_json::from_slice(&raw).unwrap();
        for _ in 0..300 {
            let mut v = value.clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut v, &mut rng, 0);
            }
            exercise(&serde_json::to_vec(&v).unwrap());
        }
    }
    let deep = "[".repeat(100_000);
    assert!(matches!(
        parse_delivery(deep.as_bytes()),
        Err(ParseError::NotJson(_))
    ));
}

#[test]
fn thousand_item_batch() {
    let message = |n: usize| json!({"from": "1", "id": format!("wamid.{n}"), "timestamp": "1", "type": "text", "text": {"body": n.to_string()}});
    let status = |n: usize| json!({"id": format!("wamid.out.{n}"), "status": "read", "timestamp": 2, "recipient_id": "1"});
    let change = |base: usize| {
        let msgs: Vec<_> = (base..base + 150).map(message).collect();
        let sts: Vec<_> = (base..base + 100).map(status).collect();
        json!({"field": "messages", "value": {"messaging_product": "whatsapp", "messages": msgs, "statuses": sts}})
    };
    let entry =
        |id: &str, base: usize| json!({"id": id, "changes": [change(base), change(base + 250)]});
    let body =
        json!({"object": "whatsapp_business_account", "entry": [entry("1", 0), entry("2", 500)]});
    let all = parse_delivery(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        (all.len(), messages(&all).len(), statuses(&all).len()),
        (1000, 600, 400)
    );
    let unique: std::collections::HashSet<_> = keys(&all).into_iter().collect();
    assert_eq!(unique.len(), 1000);
    assert_eq!(all[999].meta().waba_id, "2");
}

#[test]
fn an_item_over_a_mebibyte_is_not_built_but_marked() {
    // One account event as large as a body may be: its tree would take a hundred
    // times its size; it stands as a marker (the raw delivery keeps it whole).
    let big: Vec<Value> = (0..200_000).map(|_| json!({"a": 0})).collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "account_update", "value": {"event": "X", "big": big}},
        {"field": "account_update", "value": {"event": "SMALL"}}]}]});
    let all = parse_delivery(body.to_string().as_bytes()).unwrap();
    let (meta, ev) = changes(&all)[0];
    assert_eq!(meta.field, "account_update");
    let bytes = ev.value["wagate_omitted"]["bytes"].as_u64().unwrap();
    assert!(bytes > 1 << 20, "{bytes}");
    assert!(
        ev.summary.as_deref().unwrap().contains("not built"),
        "{:?}",
        ev.summary
    );
    assert_eq!(changes(&all)[1].1.value, json!({"event": "SMALL"}));
    // Two large values are two items.
    let other = body.to_string().replace("\"X\"", "\"Y\"");
    let again = parse_delivery(other.as_bytes()).unwrap();
    assert_ne!(all[0].dedup_key(), again[0].dedup_key());
}

#[test]
fn capped_parsing_builds_the_first_items_and_counts_the_rest() {
    let messages: Vec<Value> = (0..50)
        .map(|n| json!({"from": "1", "id": format!("wamid.{n}"), "timestamp": "1", "type": "text", "text": {"body": "x"}}))
        .collect();
    let body = wrap(json!({"contacts": [{"wa_id": "1"}], "messages": messages}));
    let all = parse_delivery(&body).unwrap();
    let capped = parse_capped(&body, 10).unwrap();
    assert_eq!(
        (capped.found, capped.items.len(), capped.skipped()),
        (51, 10, 41)
    );
    assert_eq!(capped.items, all[..10]);
    // An envelope error past the cap is still an error.
    let mut bad: Value = serde_json::from_slice(&body).unwrap();
    bad["entry"].as_array_mut().unwrap().push(json!(5));
    let bad = parse_capped(bad.to_string().as_bytes(), 10);
    assert!(matches!(bad, Err(ParseError::NotMetaShape(_))), "{bad:?}");
}
