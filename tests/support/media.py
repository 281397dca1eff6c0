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
