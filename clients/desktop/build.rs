// The app's commands are listed so that each gets an `allow-<command>` permission: the app's
// page is granted all of them (capabilities/default.json), the gateway's pages a few.
const COMMANDS: &[&str] = &[
    "profiles",
    "probe",
    "sign_in",
    "status",
    "notifications",
    "set_paused",
    "open_run",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("the Tauri context builds");
}
