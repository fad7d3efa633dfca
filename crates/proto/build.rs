use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "socialops/events/v1/events.proto",
    "socialops/privacy/v1/privacy.proto",
    "socialops/ingestion/v1/ingestion.proto",
    "socialops/profiles/v1/profiles.proto",
    "socialops/segmentation/v1/segmentation.proto",
    "socialops/alerts/v1/alerts.proto",
    "socialops/sentiment/v1/sentiment.proto",
    "socialops/campaigns/v1/campaigns.proto",
    "socialops/campaign/v1/campaign.proto",
    "socialops/campaign/v1/coupons.proto",
    "socialops/campaign/v1/referrals.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("socialops_descriptor.bin");

    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut config = tonic_prost_build::Config::new();
    // A vendored protoc, so a fresh machine builds without installing one; PROTOC still overrides it.
    match std::env::var_os("PROTOC") {
        Some(protoc) => config.protoc_executable(protoc),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    // `prost::Name` for every message: the `schema` header is the type's full proto name.
    config.enable_type_names();

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_with_config(config, &files, &[root])?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .preserve_proto_field_names()
        .build(&[".socialops"])?;
    Ok(())
}
