//! `train`: fits OverlapNet on simulated drives and real recordings, in epochs over balanced
//! pairs with yaw augmentation, each step drawing a chosen share of its pairs from the real
//! recordings; validates on held-out worlds and held-out real recordings after each epoch.
//! Weights, optimiser moments and progress are checkpointed so a stopped training resumes
//! (`--resume`) where it stopped; a new training may start from other weights (`init`).

pub mod real_data;

use crate::error::{Error, Result};
use crate::ground_truth::pairs::Balance;
use crate::ground_truth::pairs::PairLabel;
use crate::io::atomic::write_bytes_atomic;
use crate::overlapnet::data::{DataConfig, PairSet, simulated_pairs};
use crate::overlapnet::model::{ModelConfig, OverlapNet, save};
use crate::overlapnet::train::{Adam, Sample, Validation, member_rows, train_step, validate};
use crate::pipeline::status::progress_bar;
use crate::sim::Scene;
use crate::viz::{Viz, VizTarget};
use candle_core::Device;
use candle_nn::VarMap;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use real_data::RealDataConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Checkpoint folder.
    pub out: PathBuf,
    /// Input description of the model.
    pub model: ModelConfig,
    /// Simulated worlds trained on.
    pub seeds: Vec<u64>,
    /// Simulated worlds validated on (never trained on).
    pub val_seeds: Vec<u64>,
    /// Scene of the simulated drives.
    pub scene: Scene,
    /// Keep every `every`-th frame of a training drive.
    pub every: usize,
    /// Keep every `val_every`-th frame of a validation drive.
    pub val_every: usize,
    /// Validation pairs kept per 0.1-wide overlap bin.
    pub val_per_bin: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Pairs per epoch, drawn afresh each epoch from the balanced set (validation follows each
    /// epoch); `None`: the whole set.
    pub epoch_pairs: Option<usize>,
    /// Share of each batch given to a scan paired with itself turned at random (overlap 1, known
    /// yaw): the balanced set holds few pairs above the yaw loss's 0.7 overlap.
    pub self_pair_share: f64,
    /// Network inputs per step (pairs, for a plain network; rows of M pairs for MIMO).
    pub batch: usize,
    /// MIMO batch repetition: each step's distinct pairs fill the batch this many times over,
    /// each subnetwork reading them in its own order (1: no repetition).
    pub batch_repetition: usize,
    /// MIMO input repetition: the share of rows where every subnetwork reads the same pair.
    pub input_repetition: f64,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of shuffling, sampling and augmentation.
    pub seed: u64,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps in this run.
    pub max_steps: Option<usize>,
    /// Stop (with a checkpoint) after this many minutes in this run.
    pub max_minutes: Option<f64>,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Scalars (losses, validation) to this rerun recording.
    pub viz: VizTarget,
    /// No progress bar.
    pub quiet: bool,
    /// Real recordings trained on beside the simulated worlds.
    pub real: Option<RealDataConfig>,
    /// Real recordings validated on after each epoch (never trained on).
    pub val_real: Option<RealDataConfig>,
    /// Share of each step's labelled pairs drawn from the real recordings (when there are any;
    /// 1 with no simulated worlds).
    pub real_share: f64,
    /// Start a new training from these weights (safetensors): every variable whose name and
    /// shape match is copied, the rest start fresh.
    pub init: Option<PathBuf>,
    /// Each training pair empties up to this share of its images' pixels (drawn uniformly per
    /// pair): domain randomisation towards real scans' missing returns.
    pub dropout: f32,
    /// Each training pair empties up to this share of its query's columns as one sector (drawn
    /// uniformly per pair; 0: none): occluders beside the sensor hide whole directions.
    pub sector_blank: f32,
}

/// Progress saved with every checkpoint (`state.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished.
    pub epoch: usize,
    /// Steps done in the current epoch.
    pub step_in_epoch: usize,
    /// Steps done in all.
    pub steps: usize,
    /// Seconds spent training, over all runs.
    pub wall_s: f64,
    /// Validation after each finished epoch.
    pub history: Vec<EpochRecord>,
}

/// One finished epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps in the run that finished it.
    pub train_loss: f64,
    /// Validation overlap MAE.
    pub val_overlap_mae: f64,
    /// Validation AUC.
    pub val_auc: f64,
    /// Validation F1max.
    pub val_f1_max: f64,
    /// Validation mean yaw error, degrees.
    pub val_yaw_err_mean_deg: f64,
    /// Training seconds so far.
    pub wall_s: f64,
    /// Validation on held-out real recordings, when given.
    #[serde(default)]
    pub real_val: Option<RealValidation>,
}

/// Validation figures on real recordings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RealValidation {
    /// Pairs judged.
    pub pairs: usize,
    /// Overlap MAE.
    pub overlap_mae: f64,
    /// AUC (loop: overlap above 0.3).
    pub auc: f64,
    /// F1max.
    pub f1_max: f64,
    /// Mean predicted overlap of the pairs whose truth is 0 (across distinct places).
    pub zero_overlap_pred_mean: Option<f64>,
}

impl EpochRecord {
    /// What picks the best epoch: the simulated validation's AUC, plus, with real validation
    /// data, its AUC less its overlap MAE (ranking and calibration on real scans count as much
    /// as ranking on simulated ones).
    pub fn selection_score(&self) -> f64 {
        self.val_auc + self.real_val.as_ref().map_or(0.0, |r| r.auc - r.overlap_mae)
    }
}

const WEIGHTS: &str = "overlapnet.safetensors";
/// The weights of the epoch with the best validation AUC so far.
const BEST_WEIGHTS: &str = "best.safetensors";
const OPTIMISER: &str = "adam.safetensors";
const STATE: &str = "state.json";
/// What the training read: simulated pair counts and the real recordings' report.
const DATA: &str = "data.json";

fn candle_err(what: &Path, e: candle_core::Error) -> Error {
    Error::input(what, e.to_string())
}

fn checkpoint(cfg: &TrainConfig, varmap: &VarMap, opt: &Adam, state: &TrainState) -> Result<()> {
    save(varmap, &cfg.model, &cfg.out.join(WEIGHTS))?;
    let tmp = cfg.out.join("adam.safetensors.tmp");
    opt.save(&tmp).map_err(|e| candle_err(&tmp, e))?;
    std::fs::rename(&tmp, cfg.out.join(OPTIMISER)).map_err(|e| Error::io(cfg.out.join(OPTIMISER), e))?;
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    write_bytes_atomic(&cfg.out.join(STATE), &json)
}

/// Training data: every scan's image in one set, the pairs of simulated worlds and of real
/// recordings kept apart (each step draws from both at its share); and the validation sets.
struct Sets {
    train: PairSet,
    real_pairs: Vec<PairLabel>,
    val: PairSet,
    val_real: Option<PairSet>,
    summary: serde_json::Value,
}

fn build_sets(cfg: &TrainConfig) -> Result<Sets> {
    let note = |seed: u64| log::info!("simulated world {seed} labelled");
    let train = DataConfig {
        seeds: cfg.seeds.clone(),
        scene: cfg.scene,
        every: cfg.every,
        balance: Balance::OverlapNet,
        sample_seed: cfg.seed,
    };
    let val = DataConfig {
        seeds: cfg.val_seeds.clone(),
        every: cfg.val_every,
        balance: Balance::PerBin(cfg.val_per_bin),
        ..train.clone()
    };
    let mut train_set = simulated_pairs(&train, &cfg.model, &note);
    let sim_histogram = train_set.histogram();
    let (real_pairs, real_report) = match &cfg.real {
        Some(real) => {
            let (set, report) = real_data::real_pairs(real, &cfg.model)?;
            (train_set.append_images(set), Some(report))
        }
        None => (Vec::new(), None),
    };
    let (val_real, val_report) = match &cfg.val_real {
        Some(real) => {
            let (set, report) = real_data::real_pairs(real, &cfg.model)?;
            (Some(set), Some(report))
        }
        None => (None, None),
    };
    let summary = serde_json::json!({
        "simulated": { "seeds": cfg.seeds, "pairs_per_bin": sim_histogram },
        "real": real_report,
        "validation_real": val_report,
    });
    Ok(Sets {
        train: train_set,
        real_pairs,
        val: simulated_pairs(&val, &cfg.model, &note),
        val_real,
        summary,
    })
}

/// Copies into `varmap` every tensor of the safetensors file `path` whose name and shape match
/// a variable; returns how many were copied and the names of the variables left fresh.
fn warm_start(varmap: &VarMap, path: &Path) -> Result<(usize, Vec<String>)> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| candle_err(path, e))?;
    let mut copied = 0;
    let mut fresh = Vec::new();
    for (name, var) in varmap.data().lock().expect("varmap lock").iter() {
        match tensors.get(name) {
            Some(t) if t.dims() == var.dims() => {
                var.set(t).map_err(|e| candle_err(path, e))?;
                copied += 1;
            }
            _ => fresh.push(name.clone()),
        }
    }
    if copied == 0 {
        return Err(Error::input(
            path,
            "no tensor matches the network trained (another architecture?)",
        ));
    }
    fresh.sort();
    Ok((copied, fresh))
}

/// Validation samples: each pair's reference turned by a fixed, seeded number of columns within
/// the yaw head's +-144 degrees (a quarter of the image each way is +-90), so that the yaw error
/// measures the head, not its range.
fn validation_samples(set: &PairSet, cols: usize, seed: u64) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let quarter = (cols / 4) as i64;
    set.pairs
        .iter()
        .map(|&pair| Sample::turned(pair, 2 * (rng.random_range(-quarter..quarter) / 2)))
        .collect()
}

/// The network, its optimiser and the progress: resumed from the checkpoint in `out`, or fresh
/// (warm-started from `init` when given).
fn start_network(cfg: &TrainConfig, state_path: &Path) -> Result<(VarMap, OverlapNet, Adam, TrainState)> {
    let varmap = VarMap::new();
    let net = OverlapNet::trainable(&varmap, cfg.model, &Device::Cpu).map_err(|e| candle_err(&cfg.out, e))?;
    let mut opt = Adam::new(&varmap, cfg.lr).map_err(|e| candle_err(&cfg.out, e))?;
    let mut state = TrainState::default();
    if cfg.resume && state_path.exists() {
        let weights = cfg.out.join(WEIGHTS);
        let mut vm = varmap.clone();
        vm.load(&weights).map_err(|e| candle_err(&weights, e))?;
        opt.load(&cfg.out.join(OPTIMISER))
            .map_err(|e| candle_err(&cfg.out.join(OPTIMISER), e))?;
        let text = std::fs::read_to_string(state_path).map_err(|e| Error::io(state_path, e))?;
        state = serde_json::from_str(&text).map_err(|e| Error::input(state_path, e.to_string()))?;
        log::info!("resuming after epoch {} step {}", state.epoch, state.step_in_epoch);
    } else if let Some(init) = &cfg.init {
        let (copied, fresh) = warm_start(&varmap, init)?;
        log::info!("{copied} variables from {}; fresh: {fresh:?}", init.display());
    }
    Ok((varmap, net, opt, state))
}

/// How each step fills its batch: `self_pairs` scans paired with themselves, `from_real` pairs
/// of real recordings and `from_sim` simulated ones, `steps_per_epoch` steps an epoch.
struct StepPlan {
    self_pairs: usize,
    from_real: usize,
    from_sim: usize,
    steps_per_epoch: usize,
}

impl StepPlan {
    fn new(cfg: &TrainConfig, sets: &Sets) -> Self {
        // `distinct` pairs a step: the batch over its (MIMO) repetition.
        let distinct = cfg.batch / cfg.batch_repetition;
        let self_pairs = ((distinct as f64 * cfg.self_pair_share).round() as usize).min(distinct - 1);
        let labelled = distinct - self_pairs;
        let (sim, real) = (sets.train.pairs.len(), sets.real_pairs.len());
        let real_share = match (real, sim) {
            (0, _) => 0.0,
            (_, 0) => 1.0,
            _ => cfg.real_share,
        };
        let from_real = (labelled as f64 * real_share).round() as usize;
        let from_sim = labelled - from_real;
        let pool = if from_sim > 0 { sim } else { real };
        Self {
            self_pairs,
            from_real,
            from_sim,
            steps_per_epoch: cfg.epoch_pairs.unwrap_or(pool).div_ceil(labelled),
        }
    }

    /// Step `step`'s samples: the next pairs of this epoch's simulated and real orders, each
    /// turned at random with up to `dropout` of its pixels emptied, then the self-pairs.
    fn batch(
        &self,
        cfg: &TrainConfig,
        sets: &Sets,
        orders: &[Vec<usize>; 2],
        step: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Sample> {
        let cols = cfg.model.cols;
        let sim = cycled(&orders[0], step * self.from_sim, self.from_sim).map(|i| sets.train.pairs[i]);
        let real = cycled(&orders[1], step * self.from_real, self.from_real).map(|i| sets.real_pairs[i]);
        let scans = sets.train.images.len();
        let mut pairs: Vec<PairLabel> = sim.chain(real).collect();
        pairs.extend((0..self.self_pairs).map(|_| PairLabel::itself(rng.random_range(0..scans))));
        pairs
            .into_iter()
            .map(|pair| {
                let sample = Sample::augmented(pair, cols, rng).with_dropout(rng.random_range(0.0..=cfg.dropout));
                // Drawn only when asked for, so that runs without it keep their random sequence.
                if cfg.sector_blank > 0.0 {
                    sample.with_sector(rng.random_range(0.0..=cfg.sector_blank))
                } else {
                    sample
                }
            })
            .collect()
    }
}

/// Validation after an epoch: the simulated set's figures (the real set's when there is no
/// simulated one), and the real set's apart.
fn validate_epoch(
    net: &OverlapNet,
    sets: &Sets,
    samples: &[Sample],
    real_samples: Option<&Vec<Sample>>,
    batch: usize,
) -> candle_core::Result<(Validation, Option<RealValidation>)> {
    let real = match (&sets.val_real, real_samples) {
        (Some(set), Some(s)) if !s.is_empty() => Some(validate(net, set, s, batch)?),
        _ => None,
    };
    let main = match &real {
        Some(r) if samples.is_empty() => r.clone(),
        _ => validate(net, &sets.val, samples, batch)?,
    };
    let real = real.map(|r| real_validation(&r, real_samples.map_or(0, Vec::len)));
    Ok((main, real))
}

/// Trains (or resumes) and returns the final state; the weights are in `out/overlapnet.safetensors`.
pub fn train(cfg: &TrainConfig) -> Result<TrainState> {
    check_settings(cfg)?;
    let state_path = claim_output(cfg)?;
    let (varmap, net, opt, mut state) = start_network(cfg, &state_path)?;
    let sets = build_sets(cfg)?;
    describe_sets(cfg, &sets)?;
    let mut trainer = Trainer::new(cfg, sets, varmap, net, opt, state.wall_s)?;
    while state.epoch < cfg.epochs {
        match trainer.run_epoch(&mut state)? {
            Some(mean_loss) => trainer.end_epoch(&mut state, mean_loss)?,
            None => {
                trainer.viz.finish(crate::viz::Eye::Auto)?;
                return Ok(state);
            }
        }
    }
    trainer.viz.finish(crate::viz::Eye::Auto)?;
    Ok(state)
}

/// Refuses settings no training can run with.
fn check_settings(cfg: &TrainConfig) -> Result<()> {
    if cfg.batch == 0 || !(0.0..1.0).contains(&cfg.self_pair_share) {
        return Err(Error::Usage(
            "batch must be at least 1 and the self-pair share in [0, 1)".into(),
        ));
    }
    if !(0.0..=1.0).contains(&cfg.real_share)
        || !(0.0..1.0).contains(&cfg.dropout)
        || !(0.0..1.0).contains(&cfg.sector_blank)
    {
        return Err(Error::Usage(
            "the real share must be in [0, 1], the dropout in [0, 1) and the blanked sector under 360 degrees".into(),
        ));
    }
    if cfg.batch_repetition == 0 || cfg.batch_repetition > cfg.batch || !(0.0..=1.0).contains(&cfg.input_repetition) {
        return Err(Error::Usage(
            "batch repetition must be from 1 to the batch size and input repetition in [0, 1]".into(),
        ));
    }
    Ok(())
}

/// Makes the output folder and returns its checkpoint state's path; a folder holding another
/// training's checkpoint is refused unless resuming it.
fn claim_output(cfg: &TrainConfig) -> Result<PathBuf> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let state_path = cfg.out.join(STATE);
    if state_path.exists() && !cfg.resume {
        return Err(Error::Usage(format!(
            "{}: holds a training checkpoint; pass --resume to continue it or choose another --out",
            cfg.out.display()
        )));
    }
    Ok(state_path)
}

/// Logs the sets' sizes, writes `data.json`, and refuses sets with nothing to train or validate on.
fn describe_sets(cfg: &TrainConfig, sets: &Sets) -> Result<()> {
    log::info!(
        "training pairs {} simulated (per overlap bin {:?}) and {} real over {} scans; validation pairs {} simulated, {} real",
        sets.train.pairs.len(),
        sets.train.histogram(),
        sets.real_pairs.len(),
        sets.train.images.len(),
        sets.val.pairs.len(),
        sets.val_real.as_ref().map_or(0, |s| s.pairs.len())
    );
    let summary = serde_json::to_vec_pretty(&sets.summary).expect("summary serialises");
    write_bytes_atomic(&cfg.out.join(DATA), &summary)?;
    let no_validation = sets.val.pairs.is_empty() && sets.val_real.as_ref().is_none_or(|s| s.pairs.is_empty());
    if (sets.train.pairs.is_empty() && sets.real_pairs.is_empty()) || no_validation {
        return Err(Error::Usage(
            "no training or validation pairs: use more frames or seeds".into(),
        ));
    }
    Ok(())
}

/// One training run in progress: the network, its data, and the budget of this run.
struct Trainer<'a> {
    cfg: &'a TrainConfig,
    sets: Sets,
    varmap: VarMap,
    net: OverlapNet,
    opt: Adam,
    plan: StepPlan,
    viz: Viz,
    val_samples: Vec<Sample>,
    val_real_samples: Option<Vec<Sample>>,
    run_start: Instant,
    /// Training seconds spent before this run (a resumed training's).
    wall_before: f64,
    steps_this_run: usize,
}

impl<'a> Trainer<'a> {
    fn new(
        cfg: &'a TrainConfig,
        sets: Sets,
        varmap: VarMap,
        net: OverlapNet,
        opt: Adam,
        wall_before: f64,
    ) -> Result<Self> {
        let val_samples = validation_samples(&sets.val, cfg.model.cols, cfg.seed);
        let val_real_samples = sets
            .val_real
            .as_ref()
            .map(|s| validation_samples(s, cfg.model.cols, cfg.seed));
        Ok(Self {
            cfg,
            plan: StepPlan::new(cfg, &sets),
            sets,
            varmap,
            net,
            opt,
            viz: Viz::open(&cfg.viz)?,
            val_samples,
            val_real_samples,
            run_start: Instant::now(),
            wall_before,
            steps_this_run: 0,
        })
    }

    /// Training seconds so far, this run's and those before it.
    fn wall_s(&self) -> f64 {
        self.wall_before + self.run_start.elapsed().as_secs_f64()
    }

    /// Whether this run has used its steps or minutes.
    fn out_of_budget(&self) -> bool {
        let out_of_time = self
            .cfg
            .max_minutes
            .is_some_and(|m| self.run_start.elapsed().as_secs_f64() > m * 60.0);
        self.cfg.max_steps.is_some_and(|m| self.steps_this_run >= m) || out_of_time
    }

    /// The rest of the current epoch's steps: the mean loss when the epoch is done, `None` when
    /// the run's budget stopped it (checkpointed, to resume).
    fn run_epoch(&mut self, state: &mut TrainState) -> Result<Option<f64>> {
        let cfg = self.cfg;
        let epoch_seed = cfg.seed.wrapping_add(state.epoch as u64);
        let orders = [
            epoch_order(self.sets.train.pairs.len(), epoch_seed),
            epoch_order(self.sets.real_pairs.len(), epoch_seed ^ 0x4ea1),
        ];
        let bar = epoch_bar(cfg, state, self.plan.steps_per_epoch);
        let (mut loss_sum, mut loss_steps) = (0.0, 0);
        while state.step_in_epoch < self.plan.steps_per_epoch {
            if self.out_of_budget() {
                bar.finish_and_clear();
                state.wall_s = self.wall_s();
                checkpoint(cfg, &self.varmap, &self.opt, state)?;
                return Ok(None);
            }
            loss_sum += self.step(state, &orders)? as f64;
            loss_steps += 1;
            bar.set_message(format!("loss {:.3}", loss_sum / loss_steps as f64));
            bar.inc(1);
            if state.steps.is_multiple_of(cfg.checkpoint_every.max(1)) {
                state.wall_s = self.wall_s();
                checkpoint(cfg, &self.varmap, &self.opt, state)?;
            }
        }
        bar.finish_and_clear();
        Ok(Some(loss_sum / loss_steps.max(1) as f64))
    }

    /// One optimiser step on the next batch; returns its total loss.
    fn step(&mut self, state: &mut TrainState, orders: &[Vec<usize>; 2]) -> Result<f32> {
        let cfg = self.cfg;
        let step = state.step_in_epoch;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ ((state.epoch as u64) << 32 | step as u64));
        let batch = self.plan.batch(cfg, &self.sets, orders, step, &mut rng);
        let members = cfg.model.members();
        let rows = member_rows(&batch, members, cfg.batch_repetition, cfg.input_repetition, &mut rng);
        let loss =
            train_step(&self.net, &mut self.opt, &self.sets.train, &rows).map_err(|e| candle_err(&cfg.out, e))?;
        if !loss.total.is_finite() {
            return Err(Error::Usage(format!(
                "training diverged at step {} (loss {})",
                state.steps, loss.total
            )));
        }
        state.step_in_epoch += 1;
        state.steps += 1;
        self.steps_this_run += 1;
        self.viz.set_step(state.steps);
        self.viz.log_scalar("train/loss", loss.total as f64)?;
        self.viz.log_scalar("train/overlap_loss", loss.overlap as f64)?;
        self.viz.log_scalar("train/yaw_loss", loss.yaw as f64)?;
        Ok(loss.total)
    }

    /// Validates the finished epoch, records it, keeps the best weights and checkpoints.
    fn end_epoch(&mut self, state: &mut TrainState, mean_loss: f64) -> Result<()> {
        let cfg = self.cfg;
        let (v, real_val) = validate_epoch(
            &self.net,
            &self.sets,
            &self.val_samples,
            self.val_real_samples.as_ref(),
            cfg.batch,
        )
        .map_err(|e| candle_err(&cfg.out, e))?;
        state.epoch += 1;
        state.step_in_epoch = 0;
        state.wall_s = self.wall_s();
        let mut record = epoch_record(state.epoch, mean_loss, &v, state.wall_s);
        record.real_val = real_val;
        log_epoch(&self.viz, &record)?;
        if state
            .history
            .iter()
            .all(|r| r.selection_score() < record.selection_score())
        {
            save(&self.varmap, &cfg.model, &cfg.out.join(BEST_WEIGHTS))?;
        }
        state.history.push(record);
        checkpoint(cfg, &self.varmap, &self.opt, state)
    }
}

/// The progress bar of one epoch, at the step it resumes from.
fn epoch_bar(cfg: &TrainConfig, state: &TrainState, steps_per_epoch: usize) -> indicatif::ProgressBar {
    let bar = progress_bar(Some(steps_per_epoch), cfg.quiet, "steps");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "epoch {}/{} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} steps, {{msg}} (eta {{eta}})",
            state.epoch + 1,
            cfg.epochs
        ))
        .expect("valid template"),
    );
    bar.set_position(state.step_in_epoch as u64);
    bar
}

/// The indices 0..n in an order shuffled by `seed`.
fn epoch_order(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// `count` entries of `order` from position `start`, wrapping around (a small pool, real
/// recordings say, is cycled through more than once an epoch).
fn cycled(order: &[usize], start: usize, count: usize) -> impl Iterator<Item = usize> + '_ {
    let n = order.len();
    (start..start + if n == 0 { 0 } else { count }).map(move |k| order[k % n])
}

fn real_validation(v: &Validation, pairs: usize) -> RealValidation {
    RealValidation {
        pairs,
        overlap_mae: v.overlap_mae,
        auc: v.scores.auc,
        f1_max: v.scores.f1_max,
        zero_overlap_pred_mean: v.zero_overlap_pred_mean,
    }
}

fn epoch_record(epoch: usize, train_loss: f64, v: &Validation, wall_s: f64) -> EpochRecord {
    EpochRecord {
        epoch,
        train_loss,
        val_overlap_mae: v.overlap_mae,
        val_auc: v.scores.auc,
        val_f1_max: v.scores.f1_max,
        val_yaw_err_mean_deg: v.yaw_err_mean_deg,
        wall_s,
        real_val: None,
    }
}

fn log_epoch(viz: &Viz, r: &EpochRecord) -> Result<()> {
    log::info!(
        "epoch {}: train loss {:.4}; validation overlap MAE {:.3}, AUC {:.3}, F1max {:.3}, yaw error {:.2} deg",
        r.epoch,
        r.train_loss,
        r.val_overlap_mae,
        r.val_auc,
        r.val_f1_max,
        r.val_yaw_err_mean_deg
    );
    if let Some(real) = &r.real_val {
        log::info!(
            "epoch {}: real validation ({} pairs) overlap MAE {:.3}, AUC {:.3}, F1max {:.3}, mean prediction where the truth is 0: {:?}",
            r.epoch,
            real.pairs,
            real.overlap_mae,
            real.auc,
            real.f1_max,
            real.zero_overlap_pred_mean
        );
        viz.log_scalar("val_real/overlap_mae", real.overlap_mae)?;
        viz.log_scalar("val_real/auc", real.auc)?;
    }
    viz.log_scalar("val/overlap_mae", r.val_overlap_mae)?;
    viz.log_scalar("val/auc", r.val_auc)?;
    viz.log_scalar("val/f1_max", r.val_f1_max)?;
    viz.log_scalar("val/yaw_err_mean_deg", r.val_yaw_err_mean_deg)
}
