//! protection
/// x
#[derive(Debug)]
pub struct GateAnswer;
/// x
#[derive(Debug)]
pub struct GateRequest;
