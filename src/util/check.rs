//! One line of `wagate check`: how bad, and what.

#[derive(Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warning,
    Problem,
}

#[derive(Debug)]
pub struct Check {
    pub level: Level,
    pub message: String,
}

pub fn check(level: Level, message: impl Into<String>) -> Check {
    Check {
        level,
        message: message.into(),
    }
}
