//! The API edge fed arbitrary requests: conversion to the domain, page tokens and watch
//! cursors never panic; what conversion accepts is well formed; a page token comes back only
//! with the filters it was issued for.

use proptest::prelude::*;

use super::{page_token, watch};
use crate::domain::CaptureCommand;
use crate::proto;

/// Text as callers send it: mostly near-valid values, sometimes anything.
fn text(valid: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![3 => valid, 1 => any::<String>()]
}

fn money() -> impl Strategy<Value = Option<proto::Money>> {
    prop::option::of(
        (
            text("[A-Z]{3}|USD|JPY|KWD|usd"),
            text("-?[0-9]{0,22}(\\.[0-9]{0,8})?|1e3| 1.00"),
        )
            .prop_map(|(currency_code, value)| proto::Money {
                currency_code,
                value,
            }),
    )
}

fn capture_requests() -> impl Strategy<Value = proto::CaptureRequest> {
    (
        (
            -1i32..7,
            text("[A-Za-z0-9_-]{0,20}"),
            text("[A-Za-z0-9-]{1,40}"),
            money(),
            money(),
        ),
        (
            any::<bool>(),
            text("[ -~]{0,130}"),
            text("[ -~]{0,260}"),
            text("[ -~]{0,30}"),
        ),
        (
            prop::collection::hash_map(text("[a-z_]{1,50}"), text("[ -~]{0,300}"), 0..4),
            prop::collection::vec((money(), text("[A-Z0-9@.a-z]{0,30}")), 0..3),
            -1i32..4,
            text("[A-Za-z0-9._:-]{1,130}"),
        ),
    )
        .prop_map(
            |(
                (provider, provider_account, authorization_id, amount, authorized_amount),
                (final_capture, invoice_id, note_to_payer, soft_descriptor),
                (metadata, fees, disbursement_mode, request_id),
            )| proto::CaptureRequest {
                provider,
                provider_account,
                authorization_id,
                amount,
                authorized_amount,
                final_capture,
                invoice_id,
                note_to_payer,
                soft_descriptor,
                reference: String::new(),
                metadata,
                platform_fees: fees
                    .into_iter()
                    .map(|(amount, merchant_id)| proto::PlatformFee {
                        amount,
                        payee: Some(proto::FeePayee {
                            payee: Some(proto::fee_payee::Payee::MerchantId(merchant_id)),
                        }),
                    })
                    .collect(),
                disbursement_mode,
                request_id,
            },
        )
}

proptest! {
    #[test]
    fn capture_requests_convert_or_are_refused_never_panic(request in capture_requests()) {
        if let Ok(command) = CaptureCommand::try_from(request) {
            let parts = command.parts();
            if let Some(amount) = &parts.amount {
                prop_assert!(amount.minor_units() > 0);
                prop_assert_eq!(amount.currency().code().len(), 3);
            }
        }
    }

    #[test]
    fn page_tokens_come_back_only_with_their_filters(
        time in any::<i64>(),
        id in any::<String>(),
        filters in any::<String>(),
        other in any::<String>(),
        forged in any::<String>(),
    ) {
        let token = page_token::encode(&(time, id.clone()), &filters);
        prop_assert_eq!(page_token::decode(&token, &filters), Ok((time, id)));
        if other != filters {
            prop_assert!(page_token::decode(&token, &other).is_err());
        }
        let _ = page_token::decode(&forged, &filters);
    }

    #[test]
    fn watch_requests_are_read_or_refused_never_panic(
        since in any::<i64>(),
        capture_ids in prop::collection::vec(text("cap_[0-9A-Z]{26}"), 0..3),
        authorization_id in text("[A-Za-z0-9-]{0,40}"),
        provider in -1i32..7,
        status in -1i32..9,
    ) {
        let request = proto::WatchCapturesRequest {
            since,
            capture_ids,
            authorization_id,
            provider,
            status,
        };
        if let Ok((cursor, _)) = watch::parse_request(&request) {
            prop_assert!(cursor >= 0);
        }
    }
}
