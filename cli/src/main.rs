use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = steadfast_cli::Cli::parse();
    let code = steadfast_cli::run(cli, &mut std::io::stdout()).await;
    std::process::exit(code);
}
