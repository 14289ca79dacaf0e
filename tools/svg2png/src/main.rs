//! `svg2png FILE.svg... [--out DIR]`: renders each SVG to a PNG beside it (or in DIR), with
//! the system's fonts (DejaVu Sans stands in for plotters' `sans-serif`). A tool for looking
//! at `--plot` pictures and making the docs' PNGs; not part of the workspace, so CI never
//! builds it: `cargo run --release --manifest-path tools/svg2png/Cargo.toml -- pics/*.svg`.

use std::path::PathBuf;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) if i + 1 < args.len() => {
            let dir = PathBuf::from(args.remove(i + 1));
            args.remove(i);
            Some(dir)
        }
        _ => None,
    };
    if args.is_empty() {
        eprintln!("usage: svg2png FILE.svg... [--out DIR]");
        std::process::exit(2);
    }
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    options.fontdb_mut().set_sans_serif_family("DejaVu Sans");
    options.font_family = "DejaVu Sans".to_owned();
    let mut failed = false;
    for file in &args {
        let result = (|| -> Result<PathBuf, String> {
            let data = std::fs::read(file).map_err(|e| e.to_string())?;
            let tree = resvg::usvg::Tree::from_data(&data, &options).map_err(|e| e.to_string())?;
            let size = tree.size().to_int_size();
            let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
                .ok_or("empty picture")?;
            pixmap.fill(resvg::tiny_skia::Color::WHITE);
            resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
            let mut path = PathBuf::from(file);
            if let Some(dir) = &out {
                path = dir.join(path.file_name().ok_or("no file name")?);
            }
            path.set_extension("png");
            pixmap.save_png(&path).map_err(|e| e.to_string())?;
            Ok(path)
        })();
        match result {
            Ok(path) => println!("{}", path.display()),
            Err(e) => {
                eprintln!("{file}: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
