//! Which SKU each reservation asks for: one hot SKU, a Zipf-skewed catalogue, or a
//! uniform one.

use rand::Rng;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Hot,
    Skewed,
    Uniform,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Hot => "hot",
            Workload::Skewed => "skewed",
            Workload::Uniform => "uniform",
        }
    }

    pub const ALL: [Workload; 3] = [Workload::Hot, Workload::Skewed, Workload::Uniform];
}

/// Zipf exponent of the skewed workload.
pub const ZIPF_S: f64 = 1.1;

/// Draws SKU indexes for a workload over `skus` SKUs.
#[derive(Debug, Clone)]
pub struct Picker {
    /// Cumulative probabilities (skewed only).
    cdf: Vec<f64>,
    skus: usize,
    workload: Workload,
}

impl Picker {
    pub fn new(workload: Workload, skus: usize) -> Self {
        let skus = if workload == Workload::Hot {
            1
        } else {
            skus.max(1)
        };
        let cdf = if workload == Workload::Skewed {
            let weights: Vec<f64> = (1..=skus)
                .map(|rank| 1.0 / (rank as f64).powf(ZIPF_S))
                .collect();
            let total: f64 = weights.iter().sum();
            let mut running = 0.0;
            weights
                .iter()
                .map(|weight| {
                    running += weight / total;
                    running
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            cdf,
            skus,
            workload,
        }
    }

    pub fn skus(&self) -> usize {
        self.skus
    }

    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        match self.workload {
            Workload::Hot => 0,
            Workload::Uniform => rng.gen_range(0..self.skus),
            Workload::Skewed => {
                let draw: f64 = rng.gen();
                self.cdf
                    .partition_point(|&cumulative| cumulative < draw)
                    .min(self.skus - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn skewed_favours_the_first_ranks_and_stays_in_range() {
        let picker = Picker::new(Workload::Skewed, 10_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut first = 0;
        for _ in 0..10_000 {
            let index = picker.pick(&mut rng);
            assert!(index < 10_000);
            if index == 0 {
                first += 1;
            }
        }
        // Rank 1 of Zipf(1.1) over 10k items holds roughly 10% of the mass.
        assert!((500..2_000).contains(&first), "rank 1 drawn {first} times");
    }

    #[test]
    fn hot_always_picks_the_one_sku() {
        let picker = Picker::new(Workload::Hot, 10_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        assert_eq!(picker.skus(), 1);
        assert!((0..100).all(|_| picker.pick(&mut rng) == 0));
    }
}
