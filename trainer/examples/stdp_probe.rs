use ember_trainer::data::mnist::Mnist;
use ember_trainer::stdp::*;
use indicatif::ProgressBar;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let ntrain: usize = a[1].parse().unwrap();
    let neurons: usize = a[2].parse().unwrap();
    let mut cfg = StdpConfig { neurons, ..Default::default() };
    for kv in &a[3..] {
        let (k, v) = kv.split_once('=').unwrap();
        let f: f32 = v.parse().unwrap();
        match k {
            "eta" => cfg.eta = f, "xtar" => cfg.x_tar = f, "mu" => cfg.mu = f, "norm" => cfg.norm = f,
            "th" => cfg.threshold = f, "tp" => cfg.theta_plus = f, "leak" => cfg.leak = f, "inh" => cfg.inhibition = f,
            "T" => cfg.timesteps = f as u16, "td" => cfg.trace_decay = f, "sp" => cfg.sparsity = f, "lv" => cfg.levels = f as u32,
            "pe" => cfg.prune_every = f as usize, _ => panic!("{k}"),
        }
    }
    let d = Mnist::load(std::path::Path::new("/work/shared/data/mnist")).unwrap();
    let mut train = d.train.clone(); train.truncate(ntrain);
    let mut lab = d.train.clone(); lab.truncate(2000);
    let mut test = d.test.clone(); test.truncate(1000);
    let mut net = Network::new(cfg);
    let t0 = std::time::Instant::now();
    let bar = ProgressBar::hidden();
    train_epoch(&mut net, &train, ntrain, &bar);
    let dt = t0.elapsed().as_secs_f64();
    if net.cfg.prune_every > 0 { let (s, l) = (net.cfg.sparsity, net.cfg.levels); net.prune_and_quantize(s, l); }
    let silent = label_neurons(&mut net, &lab, &bar);
    let ev = evaluate(&mut net, &test, &bar);
    let th: f32 = net.theta.iter().sum::<f32>() / net.theta.len() as f32;
    println!("train {ntrain} in {dt:.1}s ({:.0} img/s) silent {silent} acc {:.3} spikes/img {:.1} mean theta {th:.1} sparsity {:.2}", ntrain as f64 / dt, ev.accuracy, ev.spikes_per_image, net.sparsity());
}
