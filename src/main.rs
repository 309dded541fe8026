//! The `critic` binary: command line, logging, and the server's start and stop.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "critic",
    version,
    about = "A self-hosted GitHub App that reviews pull requests with an LLM"
)]
struct Cli {
    /// TOML settings file; `CRITIC_*` environment variables override it.
    #[arg(long, global = true, env = "CRITIC_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the webhook server and the workers; with no GitHub App configured yet, first a
    /// setup page that registers one (the settings go to --config, default ./critic.toml).
    Serve {
        /// Take deliveries from this smee.io-style channel (server.webhook_proxy_url).
        #[arg(long)]
        webhook_proxy: Option<url::Url>,
    },
    /// Register the GitHub App through the setup page, write its settings, and exit.
    Setup,
    /// Check the settings and exit.
    CheckConfig,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 when the running server's /healthz answers (a container's health check).
    Health {
        /// The URL to ask; default /healthz on server.listen (an unspecified address read
        /// as loopback).
        #[arg(long)]
        url: Option<url::Url>,
    },
    /// The job queue: list jobs, or put dead ones back, or cancel a queued one.
    Jobs {
        #[command(subcommand)]
        action: Option<JobsAction>,
        /// Only jobs in this state.
        #[arg(long, value_enum)]
        state: Option<critic::operator::StateFilter>,
        /// Only jobs about this repository (`owner/name`).
        #[arg(long)]
        repo: Option<String>,
    },
    /// Per repository: threads posted, the share acted on, thumbs up and down, muted, and
    /// the model's cost per reviewed pull request.
    Stats {
        /// Only this repository (`owner/name`).
        #[arg(long)]
        repo: Option<String>,
        /// Since this day (`YYYY-MM-DD`, UTC); default all time.
        #[arg(long)]
        since: Option<String>,
    },
    /// Model calls of a month (default this one, UTC) by installation and model.
    Usage {
        /// `YYYY-MM`.
        #[arg(long)]
        month: Option<String>,
    },
    /// Review the change between two commits of a local git repository and print what
    /// Critic would say, without GitHub or a database.
    Review(ReviewArgs),
    /// Review a folder of cases with known bugs (and clean ones) and score the threads.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct EvalArgs {
    #[command(subcommand)]
    command: Option<EvalCommand>,
    /// A folder of cases, one folder each: meta.json (title, body, bugs), pr.diff,
    /// files/head/...
    #[arg(required_unless_present = "cases_file")]
    cases: Option<PathBuf>,
    /// A list of public cases (eval/cases.toml) to build from clones under --repos.
    #[arg(
        long = "cases",
        id = "cases_file",
        requires = "repos",
        conflicts_with = "cases"
    )]
    cases_file: Option<PathBuf>,
    /// Where the repositories of --cases are: OWNER/NAME or OWNER+NAME, clones or bare mirrors.
    #[arg(long)]
    repos: Option<PathBuf>,
    /// Where --cases are built (default: a temporary folder, removed after the run).
    #[arg(long)]
    out: Option<PathBuf>,
    /// An endpoint of [llm.endpoints] to review with instead of the default.
    #[arg(long)]
    model: Option<String>,
    /// A report saved from an earlier run (--format json), to compare with case by case.
    #[arg(long)]
    baseline: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = EvalFormat::Text)]
    format: EvalFormat,
    /// Cases reviewed at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Instead of reviewing, suggest tests for each case that says how its tests run (`test`
    /// in the list), write them into its checkout and run them there: parses, compiles,
    /// passes, coverage. This runs the cases' code: on an evaluation machine only.
    #[arg(long)]
    tests: bool,
    /// Each test command is stopped after this many seconds.
    #[arg(long, default_value_t = 900)]
    test_timeout: u64,
}

#[derive(clap::Subcommand)]
enum EvalCommand {
    /// Build cases from a repository's own history: each recent commit that says it fixes a
    /// bug, small and touching source files, undone, with the lines it fixed as the bug.
    /// Then run `critic eval OUT`.
    Mine(MineArgs),
}

#[derive(clap::Args)]
struct MineArgs {
    /// The repository (a clone, or a bare mirror).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Only fixes committed since this date (`2025-01-01`, `6 months ago`).
    #[arg(long)]
    since: Option<String>,
    /// At most this many cases, newest fixes first.
    #[arg(short = 'n', long = "max", default_value_t = 20)]
    max: usize,
    /// Fixes changing more source lines than this are left out.
    #[arg(long, default_value_t = 30)]
    max_lines: usize,
    /// The revision whose history is read.
    #[arg(long, default_value = "HEAD")]
    rev: String,
    /// Where the cases are written, one folder each.
    #[arg(long, default_value = "critic-eval-cases")]
    out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EvalFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ReviewArgs {
    /// The repository (any folder inside it), or a pull request's URL
    /// (`https://github.com/OWNER/REPO/pull/N`, with --dry-run).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// With a pull request's URL: review it through the GitHub App, posting nothing.
    #[arg(long)]
    dry_run: bool,
    /// The commit to compare with (the diff starts at its merge base with the head); default
    /// the remote's default branch (origin/HEAD), else `main`, else `master`.
    #[arg(long)]
    base: Option<String>,
    /// The commit to review.
    #[arg(long, default_value = "HEAD")]
    head: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit with status 1 when a finding of this severity or worse is reported.
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
    /// Most findings shown as threads on a pull request (the rest are collapsed).
    #[arg(long)]
    max_comments: Option<usize>,
}

#[derive(clap::Subcommand)]
enum JobsAction {
    /// Put a dead job (or, with --dead, every dead job) back in the queue, due now.
    Retry {
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        dead: bool,
    },
    /// End a queued job without running it.
    Cancel { id: i64 },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Markdown,
    Sarif,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FailOn {
    Critical,
    Warning,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Where settings are read from, and where the setup writes them: --config, else
    // ./critic.toml (read when it exists), for every command alike.
    let settings_file = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("critic.toml"));
    // The log format is a setting; a settings error is reported once logging is up.
    let format = critic::config::Config::load_without_app(
        Some(settings_file.as_path()).filter(|f| f.exists()),
        std::env::vars(),
    )
    .map(|(settings, _)| settings.log.format)
    .unwrap_or_default();
    if let Command::Eval(args) = &cli.command {
        init_logging(format, "warn", true);
        let file = cli
            .config
            .clone()
            .or_else(|| Some(PathBuf::from("critic.toml")).filter(|f| f.exists()));
        std::process::exit(eval(file.as_deref(), args).await);
    }
    if let Command::Review(args) = &cli.command {
        // Nothing but the report on stdout: logs go to stderr, warnings only by default.
        init_logging(format, "warn", true);
        let file = cli
            .config
            .clone()
            .or_else(|| Some(PathBuf::from("critic.toml")).filter(|f| f.exists()));
        std::process::exit(review(file.as_deref(), args).await);
    }
    init_logging(format, "info", false);
    if cli.config.is_some()
        && !settings_file.exists()
        && !matches!(cli.command, Command::Serve { .. } | Command::Setup)
    {
        eprintln!(
            "critic: cannot read config file {}: it does not exist",
            settings_file.display()
        );
        std::process::exit(2);
    }
    let existing = settings_file.exists().then_some(settings_file.as_path());
    if let Command::Health { url } = &cli.command {
        std::process::exit(health(existing, url.as_ref()).await);
    }
    if matches!(
        cli.command,
        Command::Jobs { .. } | Command::Usage { .. } | Command::Stats { .. }
    ) {
        return operate(existing, &cli.command).await;
    }
    match &cli.command {
        Command::Serve { webhook_proxy } => {
            return serve(
                &settings_file,
                cli.config.is_some(),
                false,
                webhook_proxy.as_ref(),
            )
            .await;
        }
        Command::Setup => return serve(&settings_file, cli.config.is_some(), true, None).await,
        _ => {}
    }
    let config = match critic::config::Config::load(existing) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("critic: {e}");
            std::process::exit(2);
        }
    };
    match cli.command {
        Command::CheckConfig => {
            println!("settings are valid");
            Ok(())
        }
        Command::Migrate => {
            critic::store::Store::connect(&config.settings.store.url)
                .await
                .context("migrating the store")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve { .. }
        | Command::Setup
        | Command::Review(_)
        | Command::Jobs { .. }
        | Command::Health { .. }
        | Command::Eval(_)
        | Command::Stats { .. }
        | Command::Usage { .. } => Ok(()),
    }
}

/// `critic eval`: 0 when every case was reviewed, 1 when some failed, 2 on an error before
/// any case ran. The report goes to stdout, progress to stderr.
async fn eval(config: Option<&std::path::Path>, args: &EvalArgs) -> i32 {
    if let Some(EvalCommand::Mine(mine)) = &args.command {
        return eval_mine(mine).await;
    }
    let (settings, llm) = match critic::config::Config::load_without_app(config, std::env::vars()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("critic: {e}");
            return 2;
        }
    };
    let mut built = 0;
    let mut not_built = 0;
    let temp;
    let folder = match (&args.cases, &args.cases_file, &args.repos) {
        (Some(dir), _, _) => dir.clone(),
        (None, Some(list), Some(repos)) => {
            let list = match critic::eval::public::CaseList::read(list) {
                Ok(list) => list,
                Err(e) => {
                    eprintln!("critic: {e}");
                    return 2;
                }
            };
            let out = match &args.out {
                Some(out) => out.clone(),
                None => match tempfile::tempdir() {
                    Ok(dir) => {
                        temp = dir;
                        temp.path().to_path_buf()
                    }
                    Err(e) => {
                        eprintln!("critic: a temporary folder: {e}");
                        return 2;
                    }
                },
            };
            for case in &list.cases {
                match critic::eval::public::materialise(case, repos, &out).await {
                    Ok(_) => built += 1,
                    Err(e) => {
                        eprintln!("critic: case not built, left out: {e}");
                        not_built += 1;
                    }
                }
            }
            if built == 0 {
                eprintln!("critic: no case could be built");
                return 2;
            }
            out
        }
        _ => {
            eprintln!("critic: name a folder of cases, or --cases FILE with --repos DIR");
            return 2;
        }
    };
    let cases = match critic::eval::Case::load_all(&folder) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("critic: {e}");
            return 2;
        }
    };
    let baseline = match args.baseline.as_deref().map(critic::eval::EvalReport::read) {
        Some(Err(e)) => {
            eprintln!("critic: baseline: {e}");
            return 2;
        }
        other => other.and_then(Result::ok),
    };
    let client = match critic::llm::Llm::new(&llm) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("critic: {e}");
            return 2;
        }
    };
    if let Some(model) = &args.model
        && !client.endpoint_names().contains(&model.as_str())
    {
        eprintln!(
            "critic: --model {model}: no such endpoint (known: {})",
            client.endpoint_names().join(", ")
        );
        return 2;
    }
    if args.tests {
        return eval_tests(&settings, &client, &cases, args).await;
    }
    let progress = |done: usize, total: usize, r: &critic::eval::CaseResult| {
        let what = match (&r.error, r.hit) {
            (Some(e), _) => format!("failed: {}", e.chars().take(120).collect::<String>()),
            (None, Some(true)) => format!("hit, {} thread(s)", r.threads.len()),
            (None, Some(false)) => format!("miss, {} thread(s)", r.threads.len()),
            (None, None) => format!("clean, {} thread(s)", r.threads.len()),
        };
        eprintln!("[{done}/{total}] {}: {what} ({:.0} s)", r.name, r.seconds);
    };
    let options = critic::eval::Options {
        model: args.model.as_deref(),
        concurrency: args.concurrency,
        progress: Some(&progress),
    };
    let report = match critic::eval::run(&settings, &client, &cases, &options).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("critic: {e}");
            return 2;
        }
    };
    match args.format {
        EvalFormat::Json => {
            if baseline.is_some() {
                eprintln!(
                    "critic: --baseline compares in the text format; the JSON report is written without it"
                );
            }
            println!("{}", report.json())
        }
        EvalFormat::Text => {
            print!("{}", critic::eval::render(&report));
            if let Some(baseline) = &baseline {
                print!("{}", critic::eval::compare(&report, baseline));
            }
        }
    }
    if report.totals.failed > 0 || not_built > 0 {
        1
    } else {
        0
    }
}

/// `critic eval --tests`: 0 when every runnable case ran, 1 when some could not, 2 when no
/// case says how its tests run.
async fn eval_tests(
    settings: &critic::config::Settings,
    client: &critic::llm::Llm,
    cases: &[critic::eval::Case],
    args: &EvalArgs,
) -> i32 {
    use critic::eval::run_tests;
    if cases.iter().all(|c| c.test.is_none()) {
        eprintln!("critic: no case says how its tests run (`test = {{ cmd = ... }}`)");
        return 2;
    }
    let progress = |done: usize, total: usize, r: &run_tests::TestResult| {
        let what = match (&r.error, r.outcome.passes) {
            (Some(e), _) => format!("failed: {}", e.chars().take(120).collect::<String>()),
            (None, Some(true)) => format!("{} test(s) pass", r.outcome.parsed),
            (None, Some(false)) if r.outcome.compiles == Some(false) => {
                format!("{} test(s) do not compile", r.outcome.parsed)
            }
            (None, Some(false)) => format!("{} test(s) fail", r.outcome.parsed),
            (None, None) => "no test suggested".to_string(),
        };
        eprintln!("[{done}/{total}] {}: {what} ({:.0} s)", r.name, r.seconds);
    };
    let report = run_tests::run(
        settings,
        client,
        cases,
        &run_tests::TestOptions {
            model: args.model.as_deref(),
            timeout: std::time::Duration::from_secs(args.test_timeout),
            progress: Some(&progress),
        },
    )
    .await;
    match args.format {
        EvalFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        ),
        EvalFormat::Text => print!("{}", run_tests::render(&report)),
    }
    if report.cases.iter().any(|r| r.error.is_some()) {
        1
    } else {
        0
    }
}

/// `critic eval mine`: 0 when cases were written, 1 when no fix made one, 2 on an error.
async fn eval_mine(args: &MineArgs) -> i32 {
    use critic::eval::mine;
    let options = mine::MineOptions {
        since: args.since.clone(),
        max_cases: args.max,
        max_lines: args.max_lines,
        rev: args.rev.clone(),
        ..Default::default()
    };
    let fixes = match mine::find_fixes(&args.repo, &options).await {
        Ok(fixes) => fixes,
        Err(e) => {
            eprintln!("critic: {e}");
            return 2;
        }
    };
    let mut written = 0;
    for fix in &fixes {
        match mine::build(&args.repo, fix, &args.out).await {
            Ok(dir) => {
                written += 1;
                eprintln!(
                    "{}: {} ({} line(s) in {})",
                    dir.display(),
                    fix.subject,
                    fix.changed,
                    fix.sources.join(", ")
                );
            }
            Err(e) => eprintln!("critic: left out: {e}"),
        }
    }
    if written == 0 {
        eprintln!(
            "critic: no commit in {} says it fixes a bug while changing at most {} line(s) of at most {} source file(s){}",
            args.repo.display(),
            options.max_lines,
            options.max_files,
            args.since
                .as_deref()
                .map(|s| format!(" since {s}"))
                .unwrap_or_default()
        );
        return 1;
    }
    println!(
        "{written} case(s) in {}; review them with: critic eval {}",
        args.out.display(),
        args.out.display()
    );
    0
}

/// `critic health`: 0 when `/healthz` answers 200 within 3 s, else 1 (bad settings too:
/// Docker reserves 2). Needs no GitHub App or database, so a container's health check can
/// run it as is; it never goes through an HTTP proxy the environment names.
async fn health(existing: Option<&std::path::Path>, url: Option<&url::Url>) -> i32 {
    let url = match url {
        Some(url) => url.to_string(),
        None => match critic::config::Config::load_without_app(existing, std::env::vars()) {
            Ok((settings, _)) => critic::server::health_url(settings.server.listen),
            Err(e) => {
                eprintln!("critic: {e}");
                return 1;
            }
        },
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .no_proxy()
        .build();
    let answer = match client {
        Ok(client) => client.get(&url).send().await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(r) if r.status().is_success() => 0,
        Ok(r) => {
            eprintln!("critic: {url} answered {}", r.status());
            1
        }
        Err(e) => {
            eprintln!("critic: {url}: {e}");
            1
        }
    }
}

/// `critic serve` (and `critic setup`, which stops once the App is registered).
async fn serve(
    settings_file: &std::path::Path,
    explicit: bool,
    setup_only: bool,
    webhook_proxy: Option<&url::Url>,
) -> anyhow::Result<()> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if let Some(url) = webhook_proxy {
        env.push(("CRITIC_SERVER__WEBHOOK_PROXY_URL".into(), url.to_string()));
    }
    let existing = settings_file.exists().then_some(settings_file);
    let (settings, llm) = match critic::config::Config::load_without_app(existing, env.clone()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("critic: {e}");
            std::process::exit(2);
        }
    };
    // A settings file that is not there is one the setup is to write; with an App already
    // configured (from the environment), a missing file is a mistyped path.
    if existing.is_none() && settings.github.app_id.is_some() && explicit {
        eprintln!(
            "critic: cannot read config file {}: it does not exist",
            settings_file.display()
        );
        std::process::exit(2);
    }
    let model = llm.default_endpoint();
    if llm.is_default {
        tracing::warn!(
            base_url = %model.base_url,
            model = %model.model,
            "no LLM configured: using a local Ollama; set llm.provider, llm.base_url and llm.model to change"
        );
    } else {
        tracing::info!(provider = model.provider.label(), base_url = %model.base_url, model = %model.model, "model endpoint");
    }
    let addr = settings.server.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    if setup_only {
        if settings.github.app_id.is_some() {
            println!("a GitHub App is already configured (github.app_id)");
            return Ok(());
        }
        let token = std::env::var("CRITIC_SETUP_TOKEN").ok();
        let setup = std::sync::Arc::new(
            critic::setup::Setup::new(&settings, settings_file)?
                .with_token(token.as_deref())
                .then_stop(),
        );
        tracing::warn!(url = %setup.page_url(addr), "open this page to register the GitHub App");
        critic::setup::serve(setup, listener, shutdown_signal()).await?;
        return Ok(());
    }
    tracing::info!(%addr, path = %settings.server.webhook_path, "critic listening");
    critic::serve_or_setup(settings_file, env, listener, shutdown_signal())
        .await
        .context("critic stopped")?;
    Ok(())
}

/// `critic review`: the exit status (0, 1 when `--fail-on` is met, 2 on an error).
async fn review(config: Option<&std::path::Path>, args: &ReviewArgs) -> i32 {
    use critic::review::Progress;
    use std::io::IsTerminal;
    let (settings, llm) = match critic::config::Config::load_without_app(config, std::env::vars()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("critic: {e}");
            return 2;
        }
    };
    let progress = |p: Progress| match p {
        Progress::Asking { files, chunks } => {
            eprintln!("critic: {files} file(s) to review in {chunks} request(s)…")
        }
        Progress::Answered {
            done,
            chunks,
            input_tokens,
            output_tokens,
        } => eprintln!(
            "critic: {done} of {chunks} request(s) finished ({input_tokens} input, {output_tokens} output tokens so far)"
        ),
    };
    let target = args.path.to_string_lossy().into_owned();
    let result = if target.starts_with("https://") || target.starts_with("http://") {
        if !args.dry_run {
            eprintln!(
                "critic: a pull request is reviewed here only with --dry-run (the server posts reviews)"
            );
            return 2;
        }
        match dry_run(config, &settings, &llm, &target, args, &progress).await {
            Ok(result) => result,
            Err(e) => {
                eprintln!("critic: {e}");
                return 2;
            }
        }
    } else {
        let base = match &args.base {
            Some(base) => base.clone(),
            None => match critic::review::default_base(&args.path).await {
                Ok(base) => base,
                Err(e) => {
                    eprintln!("critic: {e}");
                    return 2;
                }
            },
        };
        let request = critic::report::LocalRequest {
            dir: &args.path,
            base: &base,
            head: &args.head,
            max_comments: args.max_comments,
            progress: Some(&progress),
        };
        critic::report::review_local(&settings, &llm, &request).await
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("critic: {e}");
            let model = llm.default_endpoint();
            if !e.is_model() {
                return 2;
            }
            if llm.is_default {
                eprintln!(
                    "critic: the model is the default local Ollama at {}; start it and run `ollama pull {}`, or set llm.provider, llm.base_url and llm.model",
                    model.base_url, model.model
                );
            } else {
                eprintln!("critic: model {} at {}", model.model, model.base_url);
            }
            return 2;
        }
    };
    let out = match args.format {
        Format::Json => report.json(),
        Format::Markdown => report.markdown.clone(),
        Format::Sarif => {
            serde_json::to_string_pretty(&critic::report::sarif(&report)).unwrap_or_default()
        }
        Format::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            critic::report::text(&report, colour)
        }
    };
    println!("{}", out.trim_end());
    let failed = match args.fail_on {
        Some(FailOn::Critical) => report.has(critic::domain::Severity::Critical),
        Some(FailOn::Warning) => report.has(critic::domain::Severity::Warning),
        None => false,
    };
    i32::from(failed)
}

/// `critic review URL --dry-run`: the pull request through the App's installation on its
/// repository.
async fn dry_run(
    config: Option<&std::path::Path>,
    settings: &critic::config::Settings,
    llm: &critic::config::LlmConfig,
    url: &str,
    args: &ReviewArgs,
    progress: &(dyn Fn(critic::review::Progress) + Sync),
) -> anyhow::Result<Result<critic::report::Report, critic::report::ReportError>> {
    let parsed = url::Url::parse(url).context("not a URL")?;
    let web = &settings.github.web_url;
    if parsed.host_str() != web.host_str()
        || parsed.port_or_known_default() != web.port_or_known_default()
    {
        anyhow::bail!("{url} is not on {web} (set github.web_url for GitHub Enterprise Server)");
    }
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    let [owner, name, "pull", number, ..] = segments.as_slice() else {
        anyhow::bail!("{url} is not a pull request's URL (…/OWNER/REPO/pull/NUMBER)");
    };
    let repo: critic::github::RepoName = format!("{owner}/{name}")
        .parse()
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let number = critic::domain::PrNumber(number.parse().context("the pull request's number")?);
    let gh = match std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()) {
        Some(token) => critic::github::GitHub::with_token(&settings.github, &token)?,
        None => {
            let app = critic::config::Config::load(config).context(
                "reading a pull request needs GITHUB_TOKEN or the GitHub App's settings",
            )?;
            let github = critic::github::GitHub::new(&app)?;
            let installation = github
                .repo_installation(&repo)
                .await
                .with_context(|| format!("the App is not installed on {repo}"))?;
            github.installation(installation)?
        }
    };
    Ok(critic::report::review_pull_request(
        settings,
        llm,
        &gh,
        &repo,
        number,
        args.max_comments,
        Some(progress),
    )
    .await)
}

/// Logs as text or JSON lines, at `CRITIC_LOG` (else `default_level`), to stdout or stderr.
fn init_logging(format: critic::config::LogFormat, default_level: &str, stderr: bool) {
    let filter =
        EnvFilter::try_from_env("CRITIC_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match (format, stderr) {
        (critic::config::LogFormat::Json, false) => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        (critic::config::LogFormat::Json, true) => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .init(),
        (critic::config::LogFormat::Text, false) => builder.init(),
        (critic::config::LogFormat::Text, true) => builder.with_writer(std::io::stderr).init(),
    }
}

/// `critic jobs` and `critic usage`: the configured database, no GitHub App needed.
async fn operate(settings_file: Option<&std::path::Path>, command: &Command) -> anyhow::Result<()> {
    use critic::operator;
    let (settings, _) = critic::config::Config::load_without_app(settings_file, std::env::vars())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = critic::store::Store::connect(&settings.store.url)
        .await
        .context("opening the store")?;
    match command {
        Command::Jobs {
            action: Some(JobsAction::Retry { id, dead }),
            ..
        } => {
            if id.is_none() && !dead {
                anyhow::bail!("name a job (critic jobs retry ID) or --dead for every dead job");
            }
            let n = store.requeue_dead(*id).await?;
            println!("{n} job(s) put back in the queue");
            if n == 0
                && let Some(id) = id
            {
                anyhow::bail!("job {id} is not dead (see critic jobs --state dead)");
            }
        }
        Command::Jobs {
            action: Some(JobsAction::Cancel { id }),
            ..
        } => {
            if !store.cancel(*id).await? {
                anyhow::bail!("job {id} is not queued (a running job is left to finish)");
            }
            println!("job {id} cancelled");
        }
        Command::Jobs { state, repo, .. } => {
            print!("{}", operator::jobs(&store, *state, repo.as_deref()).await?);
        }
        Command::Usage { month } => {
            let month = month
                .clone()
                .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
            operator::month_bounds(&month)?;
            print!("{}", operator::usage(&store, &month).await?);
        }
        Command::Stats { repo, since } => {
            let since_ms = match since {
                Some(day) => operator::day_start(day)?,
                None => 0,
            };
            print!(
                "{}",
                operator::stats(&store, repo.as_deref(), since_ms).await?
            );
        }
        _ => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
