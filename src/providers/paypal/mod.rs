//! PayPal Payments v2 connector.
