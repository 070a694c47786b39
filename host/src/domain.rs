//! Validated input types, parsed at the boundary (whichever front end) so
//! the economy service and storage never see an invalid value. Each names
//! its limits.

/// Why an input was refused, in the API's terms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

/// The most of one item a single request may buy, consume or grant.
pub const MAX_QUANTITY: u64 = 1_000_000;
/// The most distinct items one purchase (one bundle, or what a rules
/// module grants) may grant.
pub const MAX_GRANTED_ITEMS: usize = 256;
/// The largest amount of a currency a price, balance or grant may name
/// (10^15): far from i64 overflow even after multiplying by a quantity cap.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// The longest a granted stack may live: 100 years.
pub const MAX_DURATION_SECONDS: i64 = 100 * 366 * 24 * 3600;

/// Defines a string newtype checked by `$valid` with `TryFrom<String>`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max_chars:expr, $allowed:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max_chars;

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;

            fn try_from(value: String) -> Result<Self, ValidationError> {
                let length = value.chars().count();
                let valid: fn(char) -> bool = $valid;
                if length == 0 || length > Self::MAX_CHARS || !value.chars().all(valid) {
                    return Err(ValidationError(format!(
                        "{} must be 1 to {} characters: {}",
                        $what,
                        Self::MAX_CHARS,
                        $allowed
                    )));
                }
                Ok(Self(value))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

fn is_printable(c: char) -> bool {
    !c.is_control()
}

checked_string!(
    /// A currency code such as `gems` or `GD`: letters, digits, `_ - . :`.
    CurrencyCode, "currency_code", 32, "letters, digits, _ - . :", is_key_char
);
checked_string!(
    /// A catalog item or store key: letters, digits, `_ - . :`.
    CatalogKey, "key", 128, "letters, digits, _ - . :", is_key_char
);
checked_string!(
    /// A user's tenant-scoped identity (custom id, entity id).
    Identity, "identity", 128, "no control characters", is_printable
);
checked_string!(
    /// A custom id: a secret the game keeps on the device (a random device
    /// id, at least 128 bits). Stored only as its SHA-256.
    CustomId, "custom_id", 128, "no control characters", is_printable
);

impl CustomId {
    pub fn hash(&self) -> [u8; 32] {
        crate::secrets::hash(&self.0)
    }
}

checked_string!(
    /// A display name.
    Name, "name", 200, "no control characters", is_printable
);
checked_string!(
    /// A client-chosen idempotency key.
    IdempotencyKey, "idempotency_key", 128, "no control characters", is_printable
);
checked_string!(
    /// A tenant slug: lowercase letters, digits and dashes.
    Slug, "slug", 63, "lowercase letters, digits and dashes", |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
);

/// A quantity of items: 1 to [`MAX_QUANTITY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity(u64);

impl Quantity {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = ValidationError;

    fn try_from(value: i64) -> Result<Self, ValidationError> {
        match u64::try_from(value) {
            Ok(q) if (1..=MAX_QUANTITY).contains(&q) => Ok(Self(q)),
            _ => Err(ValidationError(format!("quantity must be between 1 and {MAX_QUANTITY}"))),
        }
    }
}

/// Checks an amount is within 0..=[`MAX_AMOUNT`].
pub fn amount(field: &str, value: i64) -> Result<i64, ValidationError> {
    if (0..=MAX_AMOUNT).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError(format!("{field} must be between 0 and {MAX_AMOUNT}")))
    }
}

/// Parses a UUID in canonical text form.
pub fn uuid(field: &str, value: &str) -> Result<uuid::Uuid, ValidationError> {
    uuid::Uuid::try_parse(value).map_err(|_| ValidationError(format!("{field} must be a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_keys_refuse_empty_long_and_odd_characters() {
        assert!(CurrencyCode::try_from("gems".to_owned()).is_ok());
        assert!(CurrencyCode::try_from(String::new()).is_err());
        assert!(CurrencyCode::try_from("a b".to_owned()).is_err());
        assert!(CatalogKey::try_from("x".repeat(129)).is_err());
        assert!(Slug::try_from("My-Game".to_owned()).is_err());
        assert!(Identity::try_from("player\n".to_owned()).is_err());
    }

    #[test]
    fn quantities_are_between_one_and_the_cap() {
        assert!(Quantity::try_from(0).is_err());
        assert!(Quantity::try_from(-1).is_err());
        assert_eq!(Quantity::try_from(3).unwrap().get(), 3);
        assert!(Quantity::try_from(MAX_QUANTITY as i64 + 1).is_err());
    }
}
