"""Writing frames to files atomically: MP4/GIF streamed through a writer thread, PNG with a record.

Every file goes to a hidden temporary name in its folder first (fileio.temp_beside), then
os.replace; a failure or Ctrl-C removes the temporary file. Videos are fed frame by frame through
a bounded queue to a writer thread (ffmpeg for MP4, Pillow's GIF pieces for GIF), so memory does
not grow with the number of frames. Each file carries a text record of what it shows: the
comment of an MP4 or GIF, the PNG text key RECORD_KEY.
"""
from __future__ import annotations

import os
import queue
import shutil
import threading
from pathlib import Path

import numpy as np

from .errors import UserError, first_line
from .fileio import atomic_path, temp_beside

MP4_QUALITY = 8             # imageio-ffmpeg's 1-10 scale; 8 -> libx264 -crf 10 (visually lossless)
QUEUE_FRAMES = 8            # frames waiting for the writer thread at most
RECORD_KEY = "biggan-directions"  # PNG text key of the settings record (MP4/GIF: 'comment')


def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg will use; UserError saying how to get one if absent."""
    hint = "MP4 needs ffmpeg from imageio-ffmpeg: pip install imageio-ffmpeg, or use --format gif."
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UserError(f"imageio-ffmpeg is not installed; {hint}") from None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # RuntimeError when no binary is found
        raise UserError(f"no ffmpeg found ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        f"{hint}") from None
    if not (os.path.isfile(exe) or shutil.which(exe)):
        raise UserError(f"ffmpeg {exe!r} does not exist; {hint}")
    return exe


class Mp4Encoder:
    """H.264 (libx264, yuv420p) through imageio-ffmpeg's pipe; frames are not resized
    (macro_block_size=1), so sizes must be even (frames.frame_size pads them)."""

    def __init__(self, path: Path, size_hw: tuple[int, int], fps: float, comment: str = ""):
        import imageio_ffmpeg

        self.path = path
        self._gen = imageio_ffmpeg.write_frames(
            str(path), (size_hw[1], size_hw[0]), fps=float(fps), codec="libx264",
            pix_fmt_out="yuv420p", macro_block_size=1, quality=MP4_QUALITY,
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart", "-metadata", f"comment={comment}"])
        self._gen.send(None)

    def add(self, frame: np.ndarray) -> None:
        self._gen.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self._gen.close()                                   # waits for ffmpeg to finish
        if self.path.stat().st_size == 0:
            raise OSError("ffmpeg wrote nothing; see its message above")


class GifEncoder:
    """Looping GIF (NETSCAPE loop 0 = forever), streamed frame by frame through Pillow's GIF
    writer pieces (GifImagePlugin.getheader / getdata): each frame gets its own 256-colour
    adaptive palette, every frame is kept (Pillow's save_all would merge identical neighbours and
    hold all frames until the end). Delays are stored in 10 ms steps. `comment` goes into a GIF
    comment extension."""

    def __init__(self, path: Path, size_hw: tuple[int, int], fps: float, comment: str = ""):
        self.duration = max(10, int(round(100.0 / fps)) * 10)   # ms per frame
        self.comment = comment
        self._fp = open(path, "wb")
        self._started = False

    def add(self, frame: np.ndarray) -> None:
        from PIL import GifImagePlugin, Image

        im = Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE)
        if not self._started:
            info = {"loop": 0, "duration": self.duration, "comment": self.comment}
            header, _ = GifImagePlugin.getheader(im, None, info)
            self._fp.write(b"".join(header))
            self._started = True
        self._fp.write(b"".join(GifImagePlugin.getdata(im, duration=self.duration,
                                                       include_color_table=True)))

    def close(self) -> None:
        if not self._fp.closed:
            self._fp.write(b";")                                 # GIF trailer
            self._fp.close()


ENCODERS = {"mp4": Mp4Encoder, "gif": GifEncoder}


class VideoSink:
    """Writes frames to `path` atomically: encoder on a temp file in the same folder, fed by a
    writer thread through a bounded queue, then os.replace on finish(); abort() removes the temp."""

    _DONE = object()

    def __init__(self, path: Path, fmt: str, size_hw: tuple[int, int], fps: float,
                 comment: str = ""):
        self.path = path
        self.tmp = temp_beside(path)
        self._error: BaseException | None = None
        self._aborted = False
        try:
            self._encoder = ENCODERS[fmt](self.tmp, size_hw, fps, comment)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._work, name=f"write {path.name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if self._error is None and not self._aborted:
                try:
                    self._encoder.add(item)
                except BaseException as e:  # reported to the producer by put()/finish()
                    self._error = e

    def put(self, frame: np.ndarray) -> None:
        """Queue one (H, W, 3) uint8 frame; waits while the queue is full."""
        while True:
            self._raise_error()
            try:
                self._queue.put(frame, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> Path:
        """Wait for the writer, close the encoder and move the file into place; return its path."""
        self._queue.put(self._DONE)
        self._thread.join()
        self._raise_error()
        try:
            self._encoder.close()
        except OSError as e:
            raise UserError(f"{self.path}: could not write the video ({first_line(e)}).") from None
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop the writer and remove the temporary file; the target is untouched."""
        self._aborted = True
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(self._DONE)
        self._thread.join(timeout=30)
        try:
            self._encoder.close()                        # ffmpeg ends; the partial file goes
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)

    def _raise_error(self) -> None:
        if self._error is not None:
            if isinstance(self._error, OSError):
                raise UserError(f"{self.path}: could not write the video "
                                f"({first_line(self._error)}).") from None
            raise self._error


def save_png(path: Path, image: np.ndarray, comment: str = "") -> Path:
    """Write (H, W, 3) uint8 `image` as a PNG atomically, `comment` under the text key RECORD_KEY."""
    from PIL import Image, PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text(RECORD_KEY, comment)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", pnginfo=text)
    return path
