//! Payout maths of the P/N split (DESIGN section 9).
//!
//! 1 ETH splits into one P and one N claim. At maturity the settled index `x` (USD per ETH) and
//! the strike `S` (USD per ETH) fix how the 1 ETH is shared: P receives `p = 1` if `x ≤ S`, else
//! `S / x`, and N receives `1 − p`. P is thus worth `min(x, S)` dollars and N the rest, and
//! `p + n = 1 ETH` exactly, so nothing is ever liquidated.
//!
//! Example: S = 1500 and x = 2500 give P 0.6 ETH (worth $1,500) and N 0.4 ETH (worth $1,000).

use alloy_primitives::U256;

use crate::value::{WAD, Wad};

/// The shares `(p, n)` of 1 ETH for P and N, in WAD (10^18 = 1 ETH), for settlement value `x`
/// and strike `strike`.
///
/// - `p = WAD` when `x ≤ strike` (this covers `x = 0`: P takes everything);
/// - otherwise `p = ⌊strike · WAD / x⌋`, computed in 256 bits so the product cannot overflow.
///   As `strike < x`, `p < WAD`. A zero strike gives `p = 0` for every `x > 0`.
/// - `n = WAD − p`, so `p + n = WAD` exactly. Rounding `p` down gives the rounding dust (under
///   10^-18 ETH) to N.
///
/// `p` never increases and `n` never decreases as `x` grows.
///
/// ```
/// use fixd_proto::payout::pn_split;
/// use fixd_proto::value::Wad;
/// let (p, n) = pn_split(Wad::parse("2500").unwrap(), Wad::parse("1500").unwrap());
/// assert_eq!((p.to_string(), n.to_string()), ("0.6".into(), "0.4".into()));
/// ```
pub fn pn_split(x: Wad, strike: Wad) -> (Wad, Wad) {
    let p = if x <= strike {
        WAD
    } else {
        let p = U256::from(strike.raw()) * U256::from(WAD) / U256::from(x.raw());
        // strike < x, so p < WAD.
        p.saturating_to::<u128>()
    };
    (Wad::from_raw(p), Wad::from_raw(WAD - p))
}

/// What `eth` (WAD) is worth in USD at `x` USD per ETH: `⌊eth · x / WAD⌋`, saturating at
/// [`Wad::MAX`]. For example, what a P share paid, at the settled value.
pub fn usd_value(eth: Wad, x: Wad) -> Wad {
    let usd = U256::from(eth.raw()) * U256::from(x.raw()) / U256::from(WAD);
    Wad::from_raw(usd.saturating_to::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(s: &str) -> Wad {
        Wad::parse(s).unwrap()
    }

    #[test]
    fn the_design_example() {
        assert_eq!(pn_split(w("2500"), w("1500")), (w("0.6"), w("0.4")));
        // P is worth the strike, N the rest.
        assert_eq!(usd_value(w("0.6"), w("2500")), w("1500"));
        assert_eq!(usd_value(w("0.4"), w("2500")), w("1000"));
    }

    #[test]
    fn usd_values_round_down_and_saturate() {
        assert_eq!(usd_value(Wad::from_raw(1), w("0.5")), Wad::ZERO);
        assert_eq!(usd_value(w("0.333333333333333333"), w("4500")), w("1499.9999999999999985"));
        assert_eq!(usd_value(Wad::MAX, Wad::MAX), Wad::MAX);
        assert_eq!(usd_value(w("0.963316270526893685"), w("2750.913776791666666666")).cents(), "2650.00");
        assert_eq!(Wad::from_raw(1).cents(), "0.00");
    }

    #[test]
    fn at_or_below_the_strike_p_takes_all() {
        assert_eq!(pn_split(w("1500"), w("1500")), (Wad::ONE, Wad::ZERO));
        assert_eq!(pn_split(w("1000"), w("1500")), (Wad::ONE, Wad::ZERO));
        assert_eq!(pn_split(Wad::ZERO, w("1500")), (Wad::ONE, Wad::ZERO));
        assert_eq!(pn_split(Wad::ZERO, Wad::ZERO), (Wad::ONE, Wad::ZERO));
    }

    #[test]
    fn a_zero_strike_gives_n_everything() {
        assert_eq!(pn_split(Wad::from_raw(1), Wad::ZERO), (Wad::ZERO, Wad::ONE));
        assert_eq!(pn_split(w("2500"), Wad::ZERO), (Wad::ZERO, Wad::ONE));
    }

    #[test]
    fn p_rounds_down_and_n_takes_the_dust() {
        // 1500 / 4500 = 0.333… → p = 0.333333333333333333, n = 0.666666666666666667.
        let (p, n) = pn_split(w("4500"), w("1500"));
        assert_eq!(p, w("0.333333333333333333"));
        assert_eq!(n, w("0.666666666666666667"));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let (p, n) = pn_split(Wad::MAX, Wad::from_raw(u128::MAX - 1));
        assert_eq!(p, Wad::from_raw(WAD - 1));
        assert_eq!(n, Wad::from_raw(1));
        assert_eq!(pn_split(Wad::MAX, Wad::MAX), (Wad::ONE, Wad::ZERO));
        assert_eq!(pn_split(Wad::MAX, Wad::from_raw(1)), (Wad::ZERO, Wad::ONE));
    }

    fn any_wad() -> impl Strategy<Value = Wad> {
        prop_oneof![
            Just(Wad::ZERO),
            Just(Wad::MAX),
            any::<u128>().prop_map(Wad::from_raw),
            (0u128..10u128.pow(24)).prop_map(Wad::from_raw),
        ]
    }

    proptest! {
        #[test]
        fn p_plus_n_is_one_eth(x in any_wad(), strike in any_wad()) {
            let (p, n) = pn_split(x, strike);
            prop_assert_eq!(p.checked_add(n), Some(Wad::ONE));
        }

        #[test]
        fn p_falls_and_n_rises_with_x(a in any_wad(), b in any_wad(), strike in any_wad()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let (p_lo, n_lo) = pn_split(lo, strike);
            let (p_hi, n_hi) = pn_split(hi, strike);
            prop_assert!(p_hi <= p_lo);
            prop_assert!(n_hi >= n_lo);
        }

        #[test]
        fn p_is_worth_at_most_the_strike(x in (1u128..10u128.pow(24)).prop_map(Wad::from_raw), strike in any_wad()) {
            // p · x ≤ S · WAD (P's dollar value never exceeds the strike), and the rounding loses
            // less than one wei of ETH: (p + 1) · x > S · WAD when x > S.
            let (p, _) = pn_split(x, strike);
            let value = U256::from(p.raw()) * U256::from(x.raw());
            let cap = U256::from(strike.raw()) * U256::from(WAD);
            if x > strike {
                prop_assert!(value <= cap);
                prop_assert!(value + U256::from(x.raw()) > cap);
            } else {
                prop_assert_eq!(p, Wad::ONE);
            }
        }
    }
}
