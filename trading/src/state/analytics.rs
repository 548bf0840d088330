//! Trading analytics as pure functions: running trade statistics (win rate, profit factor,
//! expectancy, ...) and the risk figures of an equity series (drawdown, daily returns,
//! Sharpe, Sortino, volatility, historical VaR). No I/O, no clock; `None` wherever a figure
//! is undefined, so no NaN or infinity ever leaves this file.

use serde::{Deserialize, Serialize};

/// Periods per year used to annualise daily figures: crypto trades every day.
pub(super) const PERIODS_PER_YEAR: f64 = 365.0;

/// A standard deviation at or below this is treated as zero: a flat curve has no risk
/// ratio, and float noise must not turn into a Sharpe of 10^15.
const TINY: f64 = 1e-12;

/// Running totals over every closed trade ever applied (not only the kept history).
/// A trade with `pnl > 0` is a win, `pnl < 0` a loss; break-even counts only as a trade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct TradeStats {
    pub trades: u64,
    pub wins: u64,
    pub losses: u64,
    /// Sum of winning P&L (≥ 0).
    pub gross_profit: f64,
    /// Sum of losing P&L as a positive amount (≥ 0).
    pub gross_loss: f64,
    pub best: Option<f64>,
    pub worst: Option<f64>,
}

impl TradeStats {
    /// The statistics of a list of closed-trade P&Ls.
    pub fn from_pnls(pnls: impl IntoIterator<Item = f64>) -> TradeStats {
        let mut stats = TradeStats::default();
        for pnl in pnls {
            stats.add(pnl);
        }
        stats
    }

    /// Counts one closed trade. A non-finite P&L (never produced by JSON) is ignored.
    pub fn add(&mut self, pnl: f64) {
        if !pnl.is_finite() {
            return;
        }
        self.trades += 1;
        if pnl > 0.0 {
            self.wins += 1;
            self.gross_profit += pnl;
        } else if pnl < 0.0 {
            self.losses += 1;
            self.gross_loss -= pnl;
        }
        self.best = Some(self.best.map_or(pnl, |b| b.max(pnl)));
        self.worst = Some(self.worst.map_or(pnl, |w| w.min(pnl)));
    }

    pub fn total_pnl(&self) -> f64 {
        self.gross_profit - self.gross_loss
    }

    /// Wins as a percentage of all trades (0 to 100); `None` before the first trade.
    pub fn win_rate(&self) -> Option<f64> {
        ratio(self.wins as f64, self.trades as f64).map(|r| r * 100.0)
    }

    /// Gross profit / gross loss; `None` when there is no loss (not infinity).
    pub fn profit_factor(&self) -> Option<f64> {
        ratio(self.gross_profit, self.gross_loss)
    }

    /// The mean winning P&L; `None` without wins.
    pub fn avg_win(&self) -> Option<f64> {
        ratio(self.gross_profit, self.wins as f64)
    }

    /// The mean losing P&L, negative; `None` without losses.
    pub fn avg_loss(&self) -> Option<f64> {
        ratio(-self.gross_loss, self.losses as f64)
    }

    /// The mean P&L per trade (= win rate × average win + loss rate × average loss).
    pub fn expectancy(&self) -> Option<f64> {
        ratio(self.total_pnl(), self.trades as f64)
    }
}

/// `a / b`, or `None` when `b` is zero or the result is not finite.
fn ratio(a: f64, b: f64) -> Option<f64> {
    if b == 0.0 {
        return None;
    }
    Some(a / b).filter(|r| r.is_finite())
}

/// The deepest peak-to-trough fall of an equity series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Drawdown {
    /// The largest fall as a percentage of the peak before it; `None` when no peak was
    /// positive (a percentage of zero or less means nothing).
    pub pct: Option<f64>,
    /// The largest fall in money, `peak - trough` (≥ 0).
    pub abs: f64,
}

/// The maximum drawdown of `values` (in time order), or `None` for an empty series. The
/// largest percentage and the largest amount may come from different falls.
pub(super) fn max_drawdown(values: &[f64]) -> Option<Drawdown> {
    let first = *values.first()?;
    let mut peak = first;
    let mut dd = Drawdown {
        pct: None,
        abs: 0.0,
    };
    for &v in values {
        peak = peak.max(v);
        dd.abs = dd.abs.max(peak - v);
        if peak > 0.0 {
            let pct = (peak - v) / peak * 100.0;
            dd.pct = Some(dd.pct.map_or(pct, |p: f64| p.max(pct)));
        }
    }
    Some(dd)
}

/// How far the last value is below the highest one so far, in percent of that peak.
pub(super) fn current_drawdown_pct(values: &[f64]) -> Option<f64> {
    let last = *values.last()?;
    let peak = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    ratio(peak - last, peak)
        .filter(|_| peak > 0.0)
        .map(|r| r * 100.0)
}

/// Percentage change from `first` to `last`; `None` unless `first` is positive.
pub(super) fn total_return_pct(first: f64, last: f64) -> Option<f64> {
    if first > 0.0 {
        ratio(last - first, first).map(|r| r * 100.0)
    } else {
        None
    }
}

/// Simple returns between consecutive closes (`c[i] / c[i-1] - 1`, as fractions); a pair
/// whose earlier close is not positive is skipped.
pub(super) fn returns(closes: &[f64]) -> Vec<f64> {
    closes
        .windows(2)
        .filter(|w| w[0] > 0.0)
        .map(|w| w[1] / w[0] - 1.0)
        .filter(|r| r.is_finite())
        .collect()
}

fn mean(xs: &[f64]) -> Option<f64> {
    ratio(xs.iter().sum(), xs.len() as f64)
}

/// The sample standard deviation (n - 1); `None` below two values.
fn stdev(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64;
    Some(var.sqrt()).filter(|s| s.is_finite())
}

/// Annualised Sharpe ratio of daily returns (risk-free rate 0): mean / stdev × √365.
/// `None` with fewer than two returns or no variation.
pub(super) fn sharpe(daily: &[f64]) -> Option<f64> {
    let sd = stdev(daily).filter(|s| *s > TINY)?;
    ratio(mean(daily)?, sd).map(|r| r * PERIODS_PER_YEAR.sqrt())
}

/// Annualised Sortino ratio: mean / downside deviation × √365, where the downside
/// deviation is √(Σ min(r, 0)² / n). `None` with fewer than two returns or no losing day.
pub(super) fn sortino(daily: &[f64]) -> Option<f64> {
    if daily.len() < 2 {
        return None;
    }
    let down = daily.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / daily.len() as f64;
    let dd = down.sqrt();
    if dd <= TINY {
        return None;
    }
    ratio(mean(daily)?, dd).map(|r| r * PERIODS_PER_YEAR.sqrt())
}

/// Annualised volatility of daily returns in percent: stdev × √365 × 100.
pub(super) fn volatility_pct(daily: &[f64]) -> Option<f64> {
    stdev(daily).map(|s| s * PERIODS_PER_YEAR.sqrt() * 100.0)
}

/// One-day 95% historical value at risk, in percent: minus the 5th percentile of the daily
/// returns, so a loss is positive (negative when even the worst days gained). `None` below
/// two returns.
pub(super) fn var_95_pct(daily: &[f64]) -> Option<f64> {
    if daily.len() < 2 {
        return None;
    }
    percentile(daily, 5.0).map(|q| -q * 100.0)
}

/// The `p`th percentile (0 to 100) with linear interpolation between closest ranks, the
/// way numpy's default does it.
pub(super) fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn three_wins_of_five() {
        let s = TradeStats::from_pnls([100.0, -50.0, 200.0, -25.0, 50.0]);
        assert_eq!((s.trades, s.wins, s.losses), (5, 3, 2));
        assert!(close(s.win_rate().unwrap(), 60.0));
        assert!(close(s.total_pnl(), 275.0));
        // 350 won / 75 lost.
        assert!(close(s.profit_factor().unwrap(), 350.0 / 75.0));
        assert!(close(s.avg_win().unwrap(), 350.0 / 3.0));
        assert!(close(s.avg_loss().unwrap(), -37.5));
        assert!(close(s.expectancy().unwrap(), 55.0));
        assert_eq!((s.best, s.worst), (Some(200.0), Some(-50.0)));
    }

    #[test]
    fn break_even_is_a_trade_but_neither_win_nor_loss() {
        let s = TradeStats::from_pnls([0.0, 10.0]);
        assert_eq!((s.trades, s.wins, s.losses), (2, 1, 0));
        assert!(close(s.win_rate().unwrap(), 50.0));
    }

    #[test]
    fn no_trades_gives_no_ratios() {
        let s = TradeStats::default();
        assert_eq!(s.win_rate(), None);
        assert_eq!(s.profit_factor(), None);
        assert_eq!(s.avg_win(), None);
        assert_eq!(s.avg_loss(), None);
        assert_eq!(s.expectancy(), None);
        assert_eq!(s.total_pnl(), 0.0);
    }

    #[test]
    fn all_losses_has_no_profit_factor_and_no_wins() {
        let s = TradeStats::from_pnls([-10.0, -30.0]);
        assert_eq!(s.win_rate(), Some(0.0));
        assert_eq!(s.profit_factor(), Some(0.0));
        assert_eq!(s.avg_win(), None);
        assert!(close(s.avg_loss().unwrap(), -20.0));
    }

    #[test]
    fn all_wins_has_no_profit_factor_rather_than_infinity() {
        let s = TradeStats::from_pnls([10.0, 30.0]);
        assert_eq!(s.profit_factor(), None);
        assert_eq!(s.avg_loss(), None);
    }

    #[test]
    fn max_drawdown_of_a_known_curve() {
        let dd = max_drawdown(&[100.0, 120.0, 90.0, 130.0, 104.0]).unwrap();
        assert!(close(dd.pct.unwrap(), 25.0));
        assert!(close(dd.abs, 30.0));
        assert!(close(
            current_drawdown_pct(&[100.0, 120.0, 90.0, 130.0, 104.0]).unwrap(),
            20.0
        ));
    }

    #[test]
    fn drawdown_edge_cases() {
        assert_eq!(max_drawdown(&[]), None);
        let single = max_drawdown(&[100.0]).unwrap();
        assert_eq!((single.pct, single.abs), (Some(0.0), 0.0));
        let flat = max_drawdown(&[5.0; 10]).unwrap();
        assert_eq!((flat.pct, flat.abs), (Some(0.0), 0.0));
        // A cumulative P&L curve that never rose above zero has no meaningful percentage.
        let pnl = max_drawdown(&[0.0, -10.0, -5.0]).unwrap();
        assert_eq!((pnl.pct, pnl.abs), (None, 10.0));
        assert_eq!(current_drawdown_pct(&[0.0, -1.0]), None);
    }

    #[test]
    fn sharpe_matches_the_formula() {
        let closes = [100.0, 102.0, 101.0, 105.0, 104.0, 108.0];
        let r = returns(&closes);
        assert_eq!(r.len(), 5);
        let n = r.len() as f64;
        let m = r.iter().sum::<f64>() / n;
        let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(close(sharpe(&r).unwrap(), m / sd * 365f64.sqrt()));
        assert!(close(
            volatility_pct(&r).unwrap(),
            sd * 365f64.sqrt() * 100.0
        ));
        let down = (r.iter().map(|x| x.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
        assert!(close(sortino(&r).unwrap(), m / down * 365f64.sqrt()));
        assert!(close(total_return_pct(100.0, 108.0).unwrap(), 8.0));
    }

    #[test]
    fn risk_ratios_need_two_returns_and_variation() {
        assert_eq!(sharpe(&[]), None);
        assert_eq!(sharpe(&[0.01]), None);
        assert_eq!(sharpe(&returns(&[100.0; 5])), None);
        assert_eq!(sortino(&[0.01, 0.02]), None, "no losing day");
        assert_eq!(volatility_pct(&[0.01]), None);
        assert_eq!(var_95_pct(&[0.01]), None);
        assert_eq!(returns(&[100.0]), Vec::<f64>::new());
        assert_eq!(returns(&[0.0, 5.0, 10.0]), vec![1.0]);
        assert_eq!(total_return_pct(0.0, 5.0), None);
    }

    #[test]
    fn var_is_the_fifth_percentile_as_a_positive_loss() {
        // 21 returns from -10% to +10% in 1% steps: rank 0.05 × 20 = 1 → -9%.
        let r: Vec<f64> = (-10..=10).map(|i| f64::from(i) / 100.0).collect();
        assert!(close(var_95_pct(&r).unwrap(), 9.0));
        // Interpolated: rank 0.05 × 3 = 0.15 between -4% and -2%.
        let r = [0.03, -0.02, -0.04, 0.01];
        assert!(close(var_95_pct(&r).unwrap(), 3.7));
        assert!(close(percentile(&[1.0, 2.0, 3.0], 50.0).unwrap(), 2.0));
    }
}
