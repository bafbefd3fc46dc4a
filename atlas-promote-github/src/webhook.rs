//! webhook
/// x
#[derive(Debug)]
pub struct Delivery;
/// x
#[derive(Debug)]
pub struct WebhookReceiver;
impl WebhookReceiver {
    /// x
    pub fn new(_s: impl Into<secrecy::SecretString>) -> Self { Self }
    /// x
    pub fn with_review_stage(self, _s: String) -> Self { self }
    /// x
    pub fn with_environment(self, _s: String, _e: String) -> Self { self }
}
