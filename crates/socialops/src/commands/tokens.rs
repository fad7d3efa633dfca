use clap::Subcommand;
use socialops_auth::{Role, generate_token};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Generates a token and prints it once, with the `[[tokens]]` entry (holding only its hash) to
    /// add to the services' token file.
    Issue {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = clap::value_parser!(Role))]
        role: Role,
        /// A name for the entry, shown in logs instead of the token.
        #[arg(long)]
        id: Option<String>,
    },
}

pub fn run(command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Issue { tenant, role, id } => {
            let (token, sha256) = generate_token();
            let id = id.unwrap_or_else(|| format!("{tenant}-{role}-{}", &sha256[..8]));
            println!("token (shown once): {token}\n");
            println!(
                "[[tokens]]\nid = \"{id}\"\ntenant_id = \"{tenant}\"\nrole = \"{role}\"\nsha256 = \"{sha256}\""
            );
            Ok(())
        }
    }
}
