"""Generate tiny media clips with the real ffmpeg binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def run_ffmpeg(args: list[str]) -> None:
    result = subprocess.run([FFMPEG, "-hide_banner", "-v", "error", "-y", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(args)}\n{result.stderr}")


def make_clip(path: Path, *, duration: float = 1.0, size: str = "160x90", rate: str = "25",
              vcodec: str = "libx264", pix_fmt: str = "yuv420p", audio_languages: tuple[str, ...] = ("eng",),
              subtitle_languages: tuple[str, ...] = (), chapters: bool = False,
              font: Path | None = None, hdr: bool = False, quality: int = 12,
              extra_video_args: tuple[str, ...] = ()) -> Path:
    """A clip that is worth converting: a high-bitrate H.264 (or other) source.

    ``quality`` is x264's QP: low values make a big file that HEVC shrinks well.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={duration}"]
    maps = ["-map", "0:v"]
    for index, _lang in enumerate(audio_languages):
        inputs += ["-f", "lavfi", "-i", f"sine=frequency={440 + 110 * index}:duration={duration}"]
        maps += ["-map", f"{index + 1}:a"]
    metadata: list[str] = []
    for index, lang in enumerate(audio_languages):
        metadata += [f"-metadata:s:a:{index}", f"language={lang}"]
    subtitle_inputs: list[str] = []
    next_input = 1 + len(audio_languages)
    for index, lang in enumerate(subtitle_languages):
        srt = path.with_name(f"{path.stem}.sub{index}.srt")
        srt.write_text(f"1\n00:00:00,000 --> 00:00:00,800\nHello {lang}\n", encoding="utf-8")
        subtitle_inputs += ["-i", str(srt)]
        maps += ["-map", f"{next_input}:s"]
        metadata += [f"-metadata:s:s:{index}", f"language={lang}"]
        next_input += 1
    chapter_args: list[str] = []
    if chapters:
        meta = path.with_name(f"{path.stem}.chapters.txt")
        half = int(duration * 500)
        meta.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND="
                        f"{half}\ntitle=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART={half}\nEND="
                        f"{int(duration * 1000)}\ntitle=Two\n", encoding="utf-8")
        subtitle_inputs += ["-i", str(meta)]
        chapter_args = ["-map_chapters", str(next_input)]
        next_input += 1
    video = ["-c:v", vcodec, "-pix_fmt", pix_fmt]
    if vcodec == "libx264":
        video += ["-qp", str(quality), "-preset", "ultrafast"]
    if hdr:
        video += ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"]
    attach: list[str] = []
    if font is not None:
        attach = ["-attach", str(font), "-metadata:s:t:0", "mimetype=application/x-truetype-font",
                  "-metadata:s:t:0", f"filename={font.name}"]
    audio = ["-c:a", "aac", "-b:a", "48k"] if audio_languages else []
    subs = ["-c:s", "srt" if path.suffix == ".mkv" else "mov_text"] if subtitle_languages else []
    run_ffmpeg([*inputs, *subtitle_inputs, *maps, *chapter_args, *video, *extra_video_args, *audio, *subs,
                *metadata, *attach, str(path)])
    return path


def find_font() -> Path:
    """A TrueType font from the system, to attach to Matroska clips."""
    fonts = [font for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
             for font in folder.rglob("*.ttf")]
    if not fonts:
        raise RuntimeError("no .ttf font installed; install fonts-dejavu-core")
    return min(fonts, key=lambda font: (font.stat().st_size, str(font)))


def make_odd_clip(path: Path, *, duration: float = 1.0) -> Path:
    """161x91 video: 4:4:4 H.264, since 4:2:0 cannot have odd dimensions."""
    return make_clip(path, duration=duration, pix_fmt="yuv444p", extra_video_args=("-vf", "scale=161:91"))


def make_vfr_clip(path: Path, *, duration: float = 2.0) -> Path:
    """Variable frame rate: frames 10-29 dropped without filling the gap, so one frame lasts 0.8 s."""
    return make_clip(path, duration=duration,
                     extra_video_args=("-vf", "select='not(between(n,10,29))'", "-fps_mode", "vfr"))


def make_audio_with_cover(path: Path, *, duration: float = 1.0) -> Path:
    """An MP3 with an attached cover picture: a video stream that is not a video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cover = path.with_suffix(".cover.jpg")
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=1", "-frames:v", "1", str(cover)])
    run_ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=440:duration={duration}", "-i", str(cover),
                "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "mjpeg",
                "-disposition:v", "attached_pic", str(path)])
    return path


def frame_times(path: Path) -> list[float]:
    """Presentation times of the first video stream's frames, with ffprobe."""
    result = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                             "frame=pts_time", "-of", "csv=p=0", str(path)],
                            capture_output=True, text=True, check=True)
    return [float(line.split(",")[0]) for line in result.stdout.split() if line.strip()]


def fast_settings(**overrides: object) -> dict[str, object]:
    """Effective settings for tests: every default, skip rules off, the fastest presets."""
    from codecshift.registry import defaults

    values = defaults()
    values.update(min_file_size_mb=0, min_duration_seconds=0, min_bits_per_pixel=0,
                  preset_cpu_hevc="ultrafast", preset_cpu_av1=12)
    values.update(overrides)
    return values


MASTER_DISPLAY_X265 = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
MASTER_DISPLAY_SVT = "G(0.265,0.69)B(0.15,0.06)R(0.68,0.32)WP(0.3127,0.329)L(1000.0,0.0001)"


def make_hdr10_clip(path: Path, *, vcodec: str = "libx265", duration: float = 1.0) -> Path:
    """10-bit PQ video carrying HDR10 static metadata (mastering display P3-D65 1000 nits, MaxCLL
    1000/400), encoded at a very high quality so a normal encode of it is smaller."""
    if vcodec == "libx265":
        extra = ("-crf", "4", "-preset", "ultrafast",
                 "-x265-params", f"log-level=error:hdr10=1:master-display={MASTER_DISPLAY_X265}:max-cll=1000,400")
    else:
        extra = ("-crf", "4", "-preset", "12",
                 "-svtav1-params", f"mastering-display={MASTER_DISPLAY_SVT}:content-light=1000,400")
    return make_clip(path, duration=duration, vcodec=vcodec, pix_fmt="yuv420p10le", hdr=True, extra_video_args=extra)
