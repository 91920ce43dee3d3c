//! The one decimal grammar for prices and quantities a user sends (HTTP order
//! entry, `exo.Order` fields): [`parse_decimal`].
//!
//! The grammar, exactly: `[0-9]{1,15}(\.[0-9]{1,13})?`, and the value must be
//! above zero. ASCII digits only; no sign (prices and quantities are
//! positive), no exponent, no spaces, no `_` or `,` separators, no `.5` or
//! `5.`. At most [`MAX_INTEGER_DIGITS`] digits before the point and
//! [`MAX_PLACES`] after it: 28 digits in all, which a `rust_decimal::Decimal`
//! (a 96-bit mantissa, 28 significant digits guaranteed) holds exactly, so a
//! value that passes is never rounded.

use rust_decimal::Decimal;

/// Most digits before the decimal point (leading zeros count: the rule is on the text).
pub const MAX_INTEGER_DIGITS: usize = 15;
/// Most digits after the decimal point (trailing zeros count).
pub const MAX_PLACES: usize = 13;

/// Why a text is not a price or quantity in exo's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not `digits` or `digits.digits` (a sign, exponent, space, separator, non-ASCII digit ...).
    #[error("must be a positive decimal of ASCII digits with an optional fraction, such as \"0.5\" (no sign, exponent, spaces or separators)")]
    Syntax,
    /// More than [`MAX_INTEGER_DIGITS`] digits before the point.
    #[error("must have at most {MAX_INTEGER_DIGITS} digits before the decimal point")]
    IntegerDigits,
    /// More than [`MAX_PLACES`] digits after the point.
    #[error("must have at most {MAX_PLACES} decimal places")]
    Places,
    /// Zero (`0`, `0.000`): prices and quantities are positive.
    #[error("must be positive, not zero")]
    Zero,
}

/// Parses a positive price or quantity written in exo's grammar (see the
/// module docs), exactly: `"0.50"` is `0.50` with its two places kept.
///
/// # Errors
/// [`DecimalError`] says which rule the text breaks.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let (integer, fraction) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(integer) || fraction.is_some_and(|f| !digits(f)) {
        return Err(DecimalError::Syntax);
    }
    if integer.len() > MAX_INTEGER_DIGITS {
        return Err(DecimalError::IntegerDigits);
    }
    let places = fraction.map_or(0, str::len);
    if places > MAX_PLACES {
        return Err(DecimalError::Places);
    }
    // At most 28 ASCII digits: the mantissa fits an i128 and then the 96 bits
    // of a Decimal (10^28 - 1 < 2^96), and the scale (<= 13) is within 28.
    let mut mantissa: i128 = 0;
    for b in integer.bytes().chain(fraction.unwrap_or("").bytes()) {
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    if mantissa == 0 {
        return Err(DecimalError::Zero);
    }
    let scale = u32::try_from(places).map_err(|_| DecimalError::Places)?;
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| DecimalError::Places)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn plain_decimals_parse_exactly_keeping_their_places() {
        assert_eq!(parse_decimal("0.5"), Ok(d("0.5")));
        assert_eq!(parse_decimal("1000"), Ok(d("1000")));
        assert_eq!(parse_decimal("0.50").unwrap().scale(), 2);
        assert_eq!(parse_decimal("007"), Ok(d("7")));
        // The float-rounding case: all nine places survive.
        assert_eq!(
            parse_decimal("12345678.123456789").unwrap().to_string(),
            "12345678.123456789"
        );
    }

    #[test]
    fn the_bounds_are_inclusive_exactly_as_documented() {
        let widest = format!(
            "{}.{}",
            "9".repeat(MAX_INTEGER_DIGITS),
            "9".repeat(MAX_PLACES)
        );
        assert_eq!(parse_decimal(&widest).unwrap().to_string(), widest);
        let tiniest = format!("0.{}1", "0".repeat(MAX_PLACES - 1));
        assert_eq!(parse_decimal(&tiniest).unwrap().to_string(), tiniest);
        let too_long = format!("1{}", "0".repeat(MAX_INTEGER_DIGITS));
        assert_eq!(parse_decimal(&too_long), Err(DecimalError::IntegerDigits));
        let too_fine = format!("0.{}1", "0".repeat(MAX_PLACES));
        assert_eq!(parse_decimal(&too_fine), Err(DecimalError::Places));
    }

    #[test]
    fn anything_outside_the_grammar_is_a_syntax_error() {
        for bad in [
            "", " 1", "1 ", "+1", "-1", "-0.5", "1_000", "1,000", "1e3", "1E+3", ".5", "5.",
            "1.2.3", "NaN", "Infinity", "inf", "0x10", "١", "１", "1\0", "1\n", "½",
        ] {
            assert_eq!(parse_decimal(bad), Err(DecimalError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn zero_is_refused_in_any_spelling() {
        for zero in ["0", "0.0", "000", "0.0000000000000"] {
            assert_eq!(parse_decimal(zero), Err(DecimalError::Zero), "{zero:?}");
        }
    }
}
