//! The reference code's per-epoch bookkeeping: the dynamic cost λ (up after `patience` successful
//! epochs, down after `patience` failed ones, set from zero to the initial cost once the trigger
//! succeeds) and early stopping once the best mask stops shrinking.

use super::NeuralCleanseParams;

/// The cost λ on ‖m‖₁ and its counters, updated once per epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct CostSchedule {
    cost: f64,
    init_cost: f64,
    target_success: f64,
    patience: usize,
    up: f64,
    down: f64,
    set_counter: usize,
    up_counter: usize,
    down_counter: usize,
    /// Whether λ has been raised since it was last set.
    pub up_flag: bool,
    /// Whether λ has been lowered since it was last set.
    pub down_flag: bool,
}

impl CostSchedule {
    /// The schedule at the start of a class: λ = 0 when `reset_cost_to_zero`, else `init_cost`.
    pub fn new(params: &NeuralCleanseParams) -> Self {
        CostSchedule {
            cost: if params.reset_cost_to_zero { 0.0 } else { params.init_cost },
            init_cost: params.init_cost,
            target_success: params.target_success,
            patience: params.patience,
            up: params.cost_up,
            down: params.cost_down,
            set_counter: 0,
            up_counter: 0,
            down_counter: 0,
            up_flag: false,
            down_flag: false,
        }
    }

    /// The current λ.
    pub fn cost(&self) -> f64 {
        self.cost
    }

    /// Ends an epoch whose average attack success was `success`; returns the new λ.
    pub fn update(&mut self, success: f64) -> f64 {
        let succeeded = success >= self.target_success;
        if self.cost == 0.0 && succeeded {
            self.set_counter += 1;
            if self.set_counter >= self.patience {
                self.cost = self.init_cost;
                self.up_counter = 0;
                self.down_counter = 0;
                self.up_flag = false;
                self.down_flag = false;
            }
        } else {
            self.set_counter = 0;
        }
        if succeeded {
            self.up_counter += 1;
            self.down_counter = 0;
        } else {
            self.up_counter = 0;
            self.down_counter += 1;
        }
        if self.up_counter >= self.patience {
            self.up_counter = 0;
            self.cost *= self.up;
            self.up_flag = true;
        } else if self.down_counter >= self.patience {
            self.down_counter = 0;
            self.cost /= self.down;
            self.down_flag = true;
        }
        self.cost
    }
}

/// Early stopping: counts epochs in which the best mask norm did not shrink.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStop {
    patience: usize,
    best: f64,
    counter: usize,
}

impl EarlyStop {
    /// A fresh counter; `patience` 0 never stops.
    pub fn new(patience: usize) -> Self {
        EarlyStop { patience, best: f64::INFINITY, counter: 0 }
    }

    /// Ends an epoch with the best successful mask norm so far (infinite if none yet); true when the
    /// class should stop (λ has gone both up and down and the best norm has not shrunk for
    /// `patience` epochs).
    pub fn update(&mut self, best_l1: f64, schedule: &CostSchedule) -> bool {
        if best_l1.is_finite() {
            if best_l1 >= self.best {
                self.counter += 1;
            } else {
                self.counter = 0;
            }
        }
        self.best = self.best.min(best_l1);
        self.patience > 0 && schedule.up_flag && schedule.down_flag && self.counter >= self.patience
    }
}
