//! Prices and metering: what each call cost, from a price table in settings over built-in
//! defaults for common hosted models.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::config::Price;
use crate::domain::{Spent, Usage};

/// USD per million tokens: (model prefix, input, output, cached input). Public list prices
/// as of late 2026; settings override any of them (`[llm.prices."MODEL"]`).
const DEFAULT_PRICES: &[(&str, f64, f64, f64)] = &[
    ("gpt-5", 1.25, 10.0, 0.125),
    ("gpt-5-mini", 0.25, 2.0, 0.025),
    ("gpt-5-nano", 0.05, 0.40, 0.005),
    ("gpt-4.1", 2.0, 8.0, 0.50),
    ("gpt-4.1-mini", 0.40, 1.60, 0.10),
    ("gpt-4.1-nano", 0.10, 0.40, 0.025),
    ("gpt-4o", 2.50, 10.0, 1.25),
    ("gpt-4o-mini", 0.15, 0.60, 0.075),
    ("o3", 2.0, 8.0, 0.50),
    ("o3-mini", 1.10, 4.40, 0.55),
    ("o4-mini", 1.10, 4.40, 0.275),
    ("claude-opus-4", 15.0, 75.0, 1.50),
    ("claude-opus-4-5", 5.0, 25.0, 0.50),
    ("claude-sonnet-4", 3.0, 15.0, 0.30),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.30),
    ("claude-3-5-sonnet", 3.0, 15.0, 0.30),
    ("claude-haiku-4-5", 1.0, 5.0, 0.10),
    ("claude-3-5-haiku", 0.80, 4.0, 0.08),
];

/// Built-in prices under the ones from settings.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl PriceTable {
    pub fn new(from_settings: &BTreeMap<String, Price>) -> PriceTable {
        let mut prices: BTreeMap<String, Price> = DEFAULT_PRICES
            .iter()
            .map(|&(m, input, output, cached)| {
                (
                    m.to_string(),
                    Price {
                        input,
                        output,
                        cached_input: Some(cached),
                    },
                )
            })
            .collect();
        prices.extend(from_settings.iter().map(|(k, v)| (k.clone(), *v)));
        PriceTable { prices }
    }

    /// The price of `model`: an exact entry, else the longest entry the name starts with
    /// (`gpt-4.1-2025-04-14` is `gpt-4.1`, `gpt-4.1-mini` is not); a router's `vendor/`
    /// prefix (OpenRouter, LiteLLM) is ignored when the full name has no entry.
    pub fn price(&self, model: &str) -> Option<Price> {
        self.lookup(model)
            .or_else(|| model.rsplit_once('/').and_then(|(_, m)| self.lookup(m)))
    }

    fn lookup(&self, model: &str) -> Option<Price> {
        self.prices
            .iter()
            .filter(|(prefix, _)| {
                model.starts_with(prefix.as_str())
                    && matches!(
                        model.as_bytes().get(prefix.len()),
                        None | Some(b'-' | b':' | b'@' | b'.')
                    )
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| *p)
    }
}

/// Millionths of a dollar for `usage` at `price` (integers so sums are exact).
pub fn cost_micros(usage: &Usage, price: &Price) -> i64 {
    let cached = usage.cached_tokens.min(usage.prompt_tokens);
    let fresh = usage.prompt_tokens - cached;
    // USD per million tokens times tokens is micro-USD.
    let micros = fresh as f64 * price.input
        + cached as f64 * price.cached_input.unwrap_or(price.input)
        + usage.output_tokens as f64 * price.output;
    micros.round() as i64
}

/// Collects what one job's calls spent, failed ones included (they were paid for too).
#[derive(Debug, Default)]
pub struct Meter {
    spent: Mutex<Vec<Spent>>,
}

impl Meter {
    pub fn new() -> Meter {
        Meter::default()
    }

    pub fn record(&self, spent: Spent) {
        let model = spent.model.clone();
        for (kind, n) in [
            ("input", spent.usage.prompt_tokens),
            ("output", spent.usage.output_tokens),
            ("cached", spent.usage.cached_tokens),
        ] {
            metrics::counter!("critic_llm_tokens_total", "model" => model.clone(), "kind" => kind)
                .increment(n);
        }
        metrics::counter!("critic_llm_cost_micro_usd_total", "model" => model)
            .increment(u64::try_from(spent.cost_micros).unwrap_or(0));
        self.lock().push(spent);
    }

    pub fn calls(&self) -> Vec<Spent> {
        self.lock().clone()
    }

    /// Tokens and micro-USD over all calls.
    pub fn total(&self) -> (Usage, i64) {
        self.lock().iter().fold((Usage::default(), 0), |(u, c), s| {
            (
                Usage {
                    prompt_tokens: u.prompt_tokens + s.usage.prompt_tokens,
                    output_tokens: u.output_tokens + s.usage.output_tokens,
                    cached_tokens: u.cached_tokens + s.usage.cached_tokens,
                },
                c + s.cost_micros,
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Spent>> {
        // A panic while holding this lock leaves a Vec that is still valid.
        self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `$0.0123` style, for summaries.
pub fn format_usd(micros: i64) -> String {
    let usd = micros as f64 / 1e6;
    if usd == 0.0 {
        "$0".into()
    } else if usd < 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_settings_override() {
        let mut settings = BTreeMap::new();
        settings.insert(
            "gpt-4.1".to_string(),
            Price {
                input: 1.0,
                output: 1.0,
                cached_input: None,
            },
        );
        settings.insert(
            "qwen2.5-coder".to_string(),
            Price {
                input: 0.0,
                output: 0.0,
                cached_input: None,
            },
        );
        let t = PriceTable::new(&settings);
        assert_eq!(t.price("gpt-4.1-2025-04-14").map(|p| p.input), Some(1.0));
        assert_eq!(t.price("gpt-4.1-mini").map(|p| p.input), Some(0.40));
        assert_eq!(
            t.price("gpt-4o-mini-2024-07-18").map(|p| p.output),
            Some(0.60)
        );
        assert_eq!(
            t.price("claude-sonnet-4-5-20250929").map(|p| p.output),
            Some(15.0)
        );
        assert_eq!(t.price("openai/gpt-4o").map(|p| p.input), Some(2.50));
        assert_eq!(t.price("qwen2.5-coder:7b").map(|p| p.input), Some(0.0));
        assert_eq!(
            t.price("gpt-4.10"),
            None,
            "a prefix must end at a separator"
        );
        assert_eq!(t.price("llama3"), None);
    }

    #[test]
    fn cost_counts_cached_tokens_at_their_price() {
        let price = Price {
            input: 2.0,
            output: 8.0,
            cached_input: Some(0.5),
        };
        let usage = Usage {
            prompt_tokens: 1_000_000,
            output_tokens: 100_000,
            cached_tokens: 400_000,
        };
        // 600k * 2 + 400k * 0.5 + 100k * 8 = 1.2 + 0.2 + 0.8 = $2.20
        assert_eq!(cost_micros(&usage, &price), 2_200_000);
        assert_eq!(format_usd(2_200_000), "$2.20");
        assert_eq!(format_usd(1234), "$0.0012");
        assert_eq!(format_usd(0), "$0");
    }

    #[test]
    fn meter_sums_calls() {
        let m = Meter::new();
        for n in 1..=3 {
            m.record(Spent {
                endpoint: "default".into(),
                model: "m".into(),
                task: "review",
                usage: Usage {
                    prompt_tokens: n,
                    output_tokens: 1,
                    cached_tokens: 0,
                },
                cost_micros: 10,
                estimated: false,
                unpriced: false,
            });
        }
        let (u, c) = m.total();
        assert_eq!((u.prompt_tokens, u.output_tokens, c), (6, 3, 30));
        assert_eq!(m.calls().len(), 3);
    }
}
