//! `svg2png FILE.svg... [--out DIR]`: renders each SVG to a PNG beside it (or in DIR), with
//! the system's fonts (DejaVu Sans stands in for plotters' `sans-serif`). A tool for looking
//! at `--plot` pictures and making the docs' PNGs; not part of the workspace, so CI never
//! builds it: `cargo run --release --manifest-path tools/svg2png/Cargo.toml -- pics/*.svg`.
//! The PNGs have a palette of at most 256 colours (the docs keep them small).

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
            resvg::render(
                &tree,
                resvg::tiny_skia::Transform::default(),
                &mut pixmap.as_mut(),
            );
            let mut path = PathBuf::from(file);
            if let Some(dir) = &out {
                path = dir.join(path.file_name().ok_or("no file name")?);
            }
            path.set_extension("png");
            save_palette_png(&pixmap, &path)?;
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

/// Writes `pixmap` as an indexed PNG: colours rounded to 4 bits a channel, the 255 most
/// frequent kept and every other pixel given the nearest of them. Charts have few colours
/// besides their anti-aliased edges, so this looks the same at a fraction of the size.
fn save_palette_png(
    pixmap: &resvg::tiny_skia::Pixmap,
    path: &std::path::Path,
) -> Result<(), String> {
    let key = |p: &[u8]| {
        (usize::from(p[0] >> 4) << 8) | (usize::from(p[1] >> 4) << 4) | usize::from(p[2] >> 4)
    };
    let mut counts = vec![0u64; 4096];
    for p in pixmap.data().chunks_exact(4) {
        counts[key(p)] += 1;
    }
    let mut used: Vec<usize> = (0..4096).filter(|&k| counts[k] > 0).collect();
    used.sort_by_key(|&k| std::cmp::Reverse(counts[k]));
    used.truncate(256);
    let rgb = |k: usize| {
        [
            ((k >> 8) & 15) as i32 * 17,
            ((k >> 4) & 15) as i32 * 17,
            (k & 15) as i32 * 17,
        ]
    };
    let mut index = vec![0u8; 4096];
    for k in 0..4096 {
        if counts[k] == 0 {
            continue;
        }
        let c = rgb(k);
        let nearest = (0..used.len())
            .min_by_key(|&i| {
                let u = rgb(used[i]);
                (0..3).map(|j| (c[j] - u[j]).pow(2)).sum::<i32>()
            })
            .unwrap_or(0);
        index[k] = nearest as u8;
    }
    let palette: Vec<u8> = used.iter().flat_map(|&k| rgb(k).map(|v| v as u8)).collect();
    let pixels: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .map(|p| index[key(p)])
        .collect();
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(
        std::io::BufWriter::new(file),
        pixmap.width(),
        pixmap.height(),
    );
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(palette);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())
}
