//! What each `fixd` subcommand does. The binary stays thin; these return `anyhow` errors that
//! `main` prints.

use anyhow::Context;
use fixd_proto::types::genesis::ProtocolParams;

use fixd_node::keys::{Keys, MEMBER_FILE};
use fixd_node::{genesis, node};
use fixd_testkit::replay::{self, ReplayArgs};

use crate::cli::{GenesisArgs, InitArgs, KeysArgs, RunCommand, VerifyArgs};

/// `fixd init`: keys, member.toml and a starter config.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let keys = Keys::generate()?;
    keys.write(&args.dir)?;
    let member = keys.member(&args.name, args.listen.clone());
    let member_path = args.dir.join(MEMBER_FILE);
    std::fs::write(&member_path, toml::to_string_pretty(&member)?)
        .with_context(|| format!("cannot write {}", member_path.display()))?;
    let config_path = args.dir.join("config.toml");
    if !config_path.exists() {
        let config = starter_config(&args.name, args.api_listen);
        std::fs::write(&config_path, config)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
    }
    println!("created member {:?} in {}", args.name, args.dir.display());
    println!("  ed25519 public key  {}", member.ed25519);
    println!("  Ethereum address    {}", member.eth_address);
    println!("  public part         {}", member_path.display());
    println!("  config              {}", config_path.display());
    println!(
        "next: collect every member's member.toml and run `fixd genesis --member ... --out genesis.toml`"
    );
    Ok(())
}

fn starter_config(name: &str, api_listen: std::net::SocketAddr) -> String {
    format!(
        "# fixd config for member {name:?}; every field is documented in node/config/example.toml.\n\
         data_dir = \"data\"\n\
         genesis = \"../genesis.toml\"\n\
         keys_dir = \".\"\n\n\
         [api]\n\
         listen = \"{api_listen}\"\n"
    )
}

/// `fixd genesis`: the committee file.
pub fn genesis(args: &GenesisArgs) -> anyhow::Result<()> {
    let members = args.members.iter().map(|p| genesis::load_member(p)).collect::<Result<Vec<_>, _>>()?;
    let params = match &args.params {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<ProtocolParams>(&text)
                .with_context(|| format!("{} is not valid [params]", path.display()))?
        }
        None => ProtocolParams::default(),
    };
    let g = genesis::build(
        args.network.clone(),
        args.chain_id,
        args.contract,
        args.contract_block,
        args.arbitrator,
        members,
        params,
    )?;
    genesis::save(&args.out, &g)?;
    let committee = g.committee();
    println!(
        "wrote {} with {} members (f = {}, quorum {}); network id {}",
        args.out.display(),
        committee.n(),
        committee.f(),
        committee.q(),
        g.network_id()
    );
    let mut addresses: Vec<_> = committee.members().iter().map(|m| m.eth_address).collect();
    addresses.sort();
    let signers: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    println!(
        "deploy SettlementOracle with constructor(initialOwner, [{}], {}, committeeDelaySecs, {}): \
         the report signers ascending, the quorum, a committee delay above the hard deadline ({} s), \
         and reward_bp",
        signers.join(", "),
        committee.q(),
        g.params.reward_bp,
        g.params.hard_deadline_secs
    );
    Ok(())
}

/// `fixd keys`: the public part of a keys directory.
pub fn keys(args: &KeysArgs) -> anyhow::Result<()> {
    let keys = Keys::read(&args.dir)?;
    if args.json {
        let out = serde_json::json!({ "ed25519": keys.public_key(), "eth_address": keys.eth_address() });
        println!("{out}");
    } else {
        println!("ed25519 public key  {}", keys.public_key());
        println!("Ethereum address    {}", keys.eth_address());
    }
    Ok(())
}

/// `fixd verify`: a proof bundle, offline.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.bundle)
        .with_context(|| format!("cannot read the proof bundle {}", args.bundle.display()))?;
    let bundle: fixd_proto::certify::ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle (JSON)", args.bundle.display()))?;
    let network_id = bundle.genesis.network_id();
    if let Some(trusted) = args.network_id
        && trusted != network_id
    {
        anyhow::bail!("the bundle is for network {network_id}, not the trusted {trusted}");
    }
    let value = fixd_proto::certify::verify_bundle(&bundle)
        .map_err(|e| anyhow::anyhow!("the proof bundle does not verify: {e}"))?;
    let certificate = &bundle.certificate;
    let trusted = args.network_id.is_some();
    if !trusted {
        eprintln!(
            "warning: no --network-id given, so this only shows that the committee of network {network_id} \
             certified the value; anyone can build a bundle for a committee of their own. Check the network \
             id against your genesis (`fixd genesis` prints it) and pass it with --network-id."
        );
    }
    let (source, inputs) = match certificate.proposal.payload.source {
        fixd_proto::types::certificate::ProposalSource::Observations => {
            ("observations", bundle.observations.len())
        }
        fixd_proto::types::certificate::ProposalSource::Review { .. } => {
            ("review votes", bundle.review_votes.len())
        }
        // verify_bundle refuses a report's certificate above.
        fixd_proto::types::certificate::ProposalSource::Report { .. } => ("inputs", 0),
    };
    // Each observation's value recomputed from its own partitions. A mismatch does not undo the
    // certificate (the value is the median of the members' values, robust to one liar), but it is
    // evidence against the member who signed it, so it is shown.
    let partitions: Vec<serde_json::Value> = bundle
        .observations
        .iter()
        .map(|o| {
            let c = &o.payload.computation;
            let member =
                bundle.genesis.members.iter().find(|m| m.ed25519 == o.signer).map(|m| m.name.clone());
            let checked = fixd_proto::methodology::check_partitions(&bundle.spec.params, c);
            serde_json::json!({
                "member": member.unwrap_or_else(|| o.signer.to_string()),
                "counted": c.partitions.iter().filter(|p| p.value.is_some()).count(),
                "two_venue": c.partitions.iter().filter(|p| p.two_venue).count(),
                "consistent": checked.is_ok(),
                "problem": checked.err().map(|e| e.to_string()),
            })
        })
        .collect();
    if args.json {
        let out = serde_json::json!({
            "partitions": partitions,
            "verified": true,
            "settlement_id": bundle.spec.id(),
            "value": value,
            "round": certificate.round,
            "proposed_in_round": certificate.proposal.payload.round,
            "votes": certificate.votes.len(),
            "source": certificate.proposal.payload.source,
            "observations": certificate.proposal.payload.inputs.len(),
            "network_id": network_id,
            "network_id_trusted": trusted,
        });
        println!("{out}");
    } else {
        println!("verified: settlement {} = {value} USD per ETH", bundle.spec.id());
        println!(
            "  decided in round {} (proposed in round {}), {} precommits of {} members (quorum {}), {inputs} {source}",
            certificate.round,
            certificate.proposal.payload.round,
            certificate.votes.len(),
            bundle.genesis.members.len(),
            bundle.genesis.committee().q(),
        );
        println!(
            "  network id {network_id}{}",
            if trusted { " (as trusted)" } else { " (NOT checked: see the warning)" }
        );
        for p in &partitions {
            let member = p["member"].as_str().unwrap_or("?");
            match p["problem"].as_str() {
                None => println!(
                    "  {member}: {} of {} partitions counted ({} under the two-venue rule); its value follows from them",
                    p["counted"], bundle.spec.params.partitions, p["two_venue"]
                ),
                Some(problem) => {
                    eprintln!("warning: the observation of {member} contradicts itself: {problem}")
                }
            }
        }
    }
    Ok(())
}

/// `fixd run`: a node until Ctrl-C or SIGTERM (honest, unless a test build was given
/// `--byzantine`).
pub async fn run(args: RunCommand) -> anyhow::Result<()> {
    let config = node::load_config(&args.node)?;
    fixd_node::logging::init(&config.log, args.node.log_json);
    let handle = fixd_testkit::byzantine::start(config, &args.byzantine).await?;
    println!("fixd API listening on http://{}", handle.api_addr());
    handle.run_until(wait_for_shutdown_signal()).await
}

/// `fixd replay-venues`: the loopback venues.
pub async fn replay_venues(args: ReplayArgs) -> anyhow::Result<()> {
    fixd_node::logging::init(&fixd_node::config::LogConfig::default(), false);
    let server = replay::serve(&args).await?;
    println!("replay venues listening on http://{}", server.local_addr());
    wait_for_shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
