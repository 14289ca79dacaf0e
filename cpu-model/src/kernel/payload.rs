//! The payload of `add_key("mktme", name, payload)`: its options and their rules.
//!
//! Source: mktme-facts.md 5.2 (the Dec-2018 RFC v2 documentation, RFC 00/62 patch 60, v2 patch
//! 57 and its review). The payload is a list of `option=value` pairs separated by whitespace:
//!
//! | option      | `user`              | `cpu`                      | `no-encrypt`, `clear` |
//! |-------------|---------------------|----------------------------|-----------------------|
//! | `type=`     | required            | required                   | required              |
//! | `algorithm=`| required, `aes-xts-128` | required, `aes-xts-128` | must be absent        |
//! | `key=`      | required, 32 hex    | optional entropy, 32 hex   | must be absent        |
//! | `tweak=`    | required, 32 hex    | optional entropy, 32 hex   | must be absent        |
//!
//! Anything else (an empty payload, an unknown or repeated option, a token that is not
//! `option=value`, malformed hex) is EINVAL, as is every rule above. `clear` existed only in the
//! Dec-2018 series and `user` was dropped in the Jul-2019 v2 (mktme-facts.md 5.1); both are kept
//! here because scenarios need them (a known key to check ciphertext against; a KeyID that
//! behaves as TME).

use mem_ctrl::pconfig::KeyCommand;
use std::fmt;

/// Bytes of a 128-bit key or tweak (`aes-xts-128`, the only algorithm the key service accepts).
pub const KEY_BYTES: usize = 16;

/// The types of MKTME key.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum KeyType {
    /// The CPU generates the keys (PCONFIG KEYID_SET_KEY_RANDOM); `key=`/`tweak=` are entropy.
    Cpu,
    /// The software supplies the keys (KEYID_SET_KEY_DIRECT).
    User,
    /// No encryption: plaintext in DRAM (KEYID_NO_ENCRYPT).
    NoEncrypt,
    /// The KeyID behaves as TME (KEYID_CLEAR_KEY).
    Clear,
}

impl KeyType {
    /// Every type.
    pub const ALL: [KeyType; 4] = [
        KeyType::Cpu,
        KeyType::User,
        KeyType::NoEncrypt,
        KeyType::Clear,
    ];

    /// The payload's spelling: `cpu`, `user`, `no-encrypt`, `clear`.
    pub const fn name(self) -> &'static str {
        match self {
            KeyType::Cpu => "cpu",
            KeyType::User => "user",
            KeyType::NoEncrypt => "no-encrypt",
            KeyType::Clear => "clear",
        }
    }

    /// The PCONFIG command that programs a key of this type.
    pub const fn command(self) -> KeyCommand {
        match self {
            KeyType::Cpu => KeyCommand::SetKeyRandom,
            KeyType::User => KeyCommand::SetKeyDirect,
            KeyType::NoEncrypt => KeyCommand::NoEncrypt,
            KeyType::Clear => KeyCommand::ClearKey,
        }
    }

    fn from_name(name: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A payload that follows every rule.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPayload {
    /// `type=`.
    pub key_type: KeyType,
    /// `key=`: the data key (`user`) or its entropy (`cpu`).
    pub key: Option<[u8; KEY_BYTES]>,
    /// `tweak=`: the tweak key (`user`) or its entropy (`cpu`).
    pub tweak: Option<[u8; KEY_BYTES]>,
}

impl fmt::Debug for KeyPayload {
    // Keys are secrets: say whether they are there, never what they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPayload")
            .field("key_type", &self.key_type)
            .field("key", &self.key.map(|_| "<secret>"))
            .field("tweak", &self.tweak.map(|_| "<secret>"))
            .finish()
    }
}

/// Why a payload is malformed (the call returns EINVAL). Never shows key material.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PayloadError {
    /// Nothing but whitespace.
    #[error("the payload is empty")]
    Empty,
    /// A token without `=`.
    #[error("`{token}` is not an option=value pair")]
    NotAnOption {
        /// The token.
        token: String,
    },
    /// An option the key service does not know.
    #[error("unknown option `{option}` (known: type, algorithm, key, tweak)")]
    UnknownOption {
        /// The option's name.
        option: String,
    },
    /// An option given twice.
    #[error("option `{option}` is given twice")]
    Duplicate {
        /// The option.
        option: &'static str,
    },
    /// No `type=`.
    #[error("type= is required")]
    MissingType,
    /// A `type=` value that is not a key type.
    #[error("unknown key type `{value}` (cpu, user, no-encrypt, clear)")]
    UnknownType {
        /// The value.
        value: String,
    },
    /// `user` and `cpu` keys need `algorithm=`.
    #[error("algorithm= is required for type={key_type}")]
    MissingAlgorithm {
        /// The key type.
        key_type: KeyType,
    },
    /// An algorithm other than `aes-xts-128`.
    #[error("algorithm `{value}` is not supported (only aes-xts-128)")]
    UnsupportedAlgorithm {
        /// The value.
        value: String,
    },
    /// An option this key type must not have.
    #[error("{option}= is not allowed for type={key_type}")]
    NotAllowed {
        /// The option.
        option: &'static str,
        /// The key type.
        key_type: KeyType,
    },
    /// `user` keys need `key=` and `tweak=`.
    #[error("{option}= is required for type=user")]
    MissingKey {
        /// The option.
        option: &'static str,
    },
    /// `key=` or `tweak=` is not exactly 32 hex digits.
    #[error("{option}= must be exactly 32 hex digits (128 bits)")]
    BadHex {
        /// The option.
        option: &'static str,
    },
}

const OPTIONS: [&str; 4] = ["type", "algorithm", "key", "tweak"];

/// Parses and checks a payload (mktme-facts.md 5.2).
pub fn parse_payload(payload: &str) -> Result<KeyPayload, PayloadError> {
    let mut values: [Option<&str>; 4] = [None; 4];
    let mut any = false;
    for token in payload.split_ascii_whitespace() {
        any = true;
        let Some((option, value)) = token.split_once('=') else {
            return Err(PayloadError::NotAnOption {
                token: token.to_owned(),
            });
        };
        let Some(i) = OPTIONS.iter().position(|o| *o == option) else {
            return Err(PayloadError::UnknownOption {
                option: option.to_owned(),
            });
        };
        if values[i].is_some() {
            return Err(PayloadError::Duplicate { option: OPTIONS[i] });
        }
        values[i] = Some(value);
    }
    if !any {
        return Err(PayloadError::Empty);
    }
    let [key_type, algorithm, key, tweak] = values;
    let key_type = key_type.ok_or(PayloadError::MissingType)?;
    let key_type = KeyType::from_name(key_type).ok_or_else(|| PayloadError::UnknownType {
        value: key_type.to_owned(),
    })?;
    let keyed = matches!(key_type, KeyType::User | KeyType::Cpu);
    match (keyed, algorithm) {
        (true, None) => return Err(PayloadError::MissingAlgorithm { key_type }),
        (true, Some(a)) if a != "aes-xts-128" => {
            return Err(PayloadError::UnsupportedAlgorithm {
                value: a.to_owned(),
            });
        }
        (false, Some(_)) => {
            return Err(PayloadError::NotAllowed {
                option: "algorithm",
                key_type,
            });
        }
        _ => {}
    }
    let mut parsed = [None; 2];
    for (slot, (option, value)) in parsed.iter_mut().zip([("key", key), ("tweak", tweak)]) {
        match (key_type, value) {
            (KeyType::User, None) => return Err(PayloadError::MissingKey { option }),
            (KeyType::NoEncrypt | KeyType::Clear, Some(_)) => {
                return Err(PayloadError::NotAllowed { option, key_type });
            }
            (_, Some(hex)) => *slot = Some(parse_hex(hex).ok_or(PayloadError::BadHex { option })?),
            (_, None) => {}
        }
    }
    Ok(KeyPayload {
        key_type,
        key: parsed[0],
        tweak: parsed[1],
    })
}

/// Exactly 32 hex digits (either case) to 16 bytes.
fn parse_hex(hex: &str) -> Option<[u8; KEY_BYTES]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * KEY_BYTES {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; KEY_BYTES];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "000102030405060708090a0b0c0d0e0f";
    const T: &str = "F0E0D0C0B0A090807060504030201000";

    #[test]
    fn hex_is_exact() {
        assert_eq!(parse_hex(K).unwrap()[15], 0x0f);
        assert_eq!(parse_hex(T).unwrap()[0], 0xf0);
        assert_eq!(parse_hex(&K[..31]), None);
        assert_eq!(parse_hex(&format!("{K}0")), None);
        assert_eq!(parse_hex(&format!("{}g", &K[..31])), None);
        assert_eq!(parse_hex(&format!("+{}", &K[..31])), None);
        // A multi-byte character never panics the slicing.
        assert_eq!(parse_hex(&format!("é{}", &K[..30])), None);
    }

    #[test]
    fn errors_name_the_rule_not_the_key() {
        let e = parse_payload(&format!("type=user algorithm=aes-xts-128 key={K} tweak=12"))
            .unwrap_err();
        assert_eq!(e, PayloadError::BadHex { option: "tweak" });
        assert!(!e.to_string().contains(K));
        let p = parse_payload(&format!(
            "type=user algorithm=aes-xts-128 key={K} tweak={T}"
        ))
        .unwrap();
        assert!(!format!("{p:?}").contains("0102"));
    }
}
