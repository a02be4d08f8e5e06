//! `overlap-slam sim-velodyne`: the simulated drive as Velodyne packets, over UDP or to pcap.

use super::args::{SimDriveArgs, print_json, stop_on_ctrl_c};
use crate::Result;
use crate::jobs::sim_velodyne::{LinkFaults, SimVelodyneConfig, sim_velodyne};
use crate::sim::velodyne::PacketSimConfig;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `sim-velodyne`.
#[derive(Args)]
pub struct SimVelodyneArgs {
    /// Send the packets to this UDP address.
    #[arg(long)]
    udp: Option<String>,
    /// Record the packets (Ethernet/IPv4/UDP frames) to this pcap file.
    #[arg(long)]
    pcap_out: Option<PathBuf>,
    /// The sensor: vlp16, hdl32e or hdl64e.
    #[arg(long, default_value = "vlp16")]
    sensor: String,
    #[command(flatten)]
    drive: SimDriveArgs,
    #[command(flatten)]
    faults: FaultArgs,
    /// Sensor clock at the first packet, seconds past the hour.
    #[arg(long, default_value_t = 0.0)]
    start_clock: f64,
    /// Write each sweep's ground truth here (TUM, stamped with the sensor clock at the sweep's start).
    #[arg(long)]
    gt_out: Option<PathBuf>,
    /// No progress bar and no summary.
    #[arg(long)]
    quiet: bool,
}

/// What goes wrong on the simulated link.
#[derive(Args)]
struct FaultArgs {
    /// Probability that a packet is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Probability that a packet is sent after the next one.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Probability that a packet is corrupted.
    #[arg(long, default_value_t = 0.0)]
    malformed: f64,
    /// Probability that a foreign datagram precedes a packet.
    #[arg(long, default_value_t = 0.0)]
    foreign: f64,
    /// Restart the sensor (clock back to zero) this many seconds in.
    #[arg(long)]
    restart_at: Option<f64>,
}

impl SimVelodyneArgs {
    /// Sends (or records) the drive and prints what was sent as JSON.
    pub fn run(self) -> Result<()> {
        let (f, drive) = (self.faults, self.drive);
        let cfg = SimVelodyneConfig {
            sim: PacketSimConfig {
                model: self.sensor.parse()?,
                seed: drive.seed,
                sweeps: drive.sweeps,
                start_azimuth_deg: 0.0,
                start_timestamp_us: (self.start_clock.rem_euclid(3600.0) * 1e6) as u32,
                drive_seed: drive.drive,
                first_sweep: drive.first_sweep,
            },
            udp: self.udp,
            pcap_out: self.pcap_out,
            gt_out: self.gt_out,
            realtime: !drive.fast,
            faults: LinkFaults {
                loss: f.loss,
                reorder: f.reorder,
                malformed: f.malformed,
                foreign: f.foreign,
                restart_at_s: f.restart_at,
            },
            stop: Some(stop_on_ctrl_c()),
            quiet: self.quiet,
        };
        let report = sim_velodyne(&cfg)?;
        if !self.quiet {
            print_json(&report);
        }
        Ok(())
    }
}
