"""Writing frames to files atomically: MP4/GIF streamed through a writer thread, PNG with a record.

Every file goes to a hidden temporary name in its folder first (fileio.temp_beside), then
os.replace; a failure or Ctrl-C removes the temporary file. Videos are fed frame by frame through
a bounded queue to a writer thread (ffmpeg for MP4, Pillow's GIF pieces for GIF), so memory does
not grow with the number of frames. Each file carries a text record of what it shows: the
comment of an MP4 or GIF, the PNG text key RECORD_KEY.
"""
from __future__ import annotations

import errno
import os
import queue
import re
import shutil
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import GifImagePlugin, Image, PngImagePlugin

from ..foundation.errors import UserError, WriteError, os_reason
from ..foundation.fileio import atomic_path, temp_beside

MP4_CRF = 10                # libx264 constant rate factor: 10 is visually lossless (imageio's 8/10)
QUEUE_FRAMES = 8            # frames waiting for the writer thread at most
RECORD_KEY = "biggan-directions"  # PNG text key of the settings record (MP4/GIF: 'comment')


def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg will use; UserError saying how to get one if absent."""
    hint = "MP4 needs ffmpeg from imageio-ffmpeg: pip install imageio-ffmpeg, or use --format gif."
    try:
        import imageio_ffmpeg       # deferred: only MP4 needs it; missing, it is one error line
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
    """H.264 (libx264 at crf MP4_CRF, yuv420p) from raw RGB frames piped into ffmpeg; frames are
    not resized, so sizes must be even (frames.frame_size pads them). ffmpeg's messages are
    kept, not shown: a failure (a full disk, an encoder that refuses the size) is an OSError
    with ffmpeg's last line, raised by add() or close(); close() also checks the exit status,
    as ffmpeg can fail on the trailer (e.g. the faststart rewrite) after taking every frame."""

    def __init__(self, path: Path, size_hw: tuple[int, int], fps: float, comment: str = ""):
        self.path = path
        height, width = size_hw
        cmd = [ffmpeg_exe(), "-y", "-nostats", "-v", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-r", str(Fraction(float(fps)).limit_denominator()), "-i", "-", "-an",
               "-c:v", "libx264", "-crf", str(MP4_CRF), "-pix_fmt", "yuv420p",
               "-movflags", "+faststart", "-metadata", f"comment={comment}", str(path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        self._messages: list[str] = []       # ffmpeg's stderr lines, read as they come
        self._reader = threading.Thread(target=self._read_messages, daemon=True,
                                        name=f"ffmpeg {path.name}")
        self._reader.start()

    def _read_messages(self) -> None:
        for line in self._proc.stderr:
            text = line.decode(errors="replace").strip()
            if text:
                self._messages = [*self._messages[-19:], text]

    def add(self, frame: np.ndarray) -> None:
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except OSError:                                      # ffmpeg stopped: say why
            self._wait()
            raise self._failure() from None

    def close(self) -> None:
        """Wait for ffmpeg to finish the file; OSError when it failed or wrote nothing."""
        self._wait()
        if self._proc.returncode != 0:
            raise self._failure()
        if self.path.stat().st_size == 0:
            raise OSError("ffmpeg wrote nothing")

    def kill(self) -> None:
        """Stop ffmpeg at once (Ctrl-C, a failed render); the file is left to the caller."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._wait()

    def _wait(self) -> None:
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.wait()
        self._reader.join(timeout=5)

    def _failure(self) -> OSError:
        """ffmpeg's last message ('Error closing file: No space left on device') as an OSError."""
        last = self._messages[-1] if self._messages else f"exit status {self._proc.returncode}"
        last = re.sub(r"^(\[[^\]]*\]\s*)+", "", last)          # '[out#0/mp4 @ 0x...] '
        return OSError(f"ffmpeg: {last}")


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
            try:
                self._fp.write(b";")                             # GIF trailer
            finally:
                self._fp.close()

    def kill(self) -> None:
        """Stop writing; the file is left to the caller."""
        try:
            self._fp.close()
        except OSError:
            pass


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
        """Wait for the writer, close the encoder and move the file into place; return its path.
        A failure (a full disk: ffmpeg's exit status and message) is a UserError naming the
        file; the temporary file is then the caller's to remove (abort)."""
        self._queue.put(self._DONE)
        self._thread.join()
        self._raise_error()
        try:
            self._encoder.close()
            os.replace(self.tmp, self.path)
        except OSError as e:
            raise _write_error(self.path, e) from None
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
        self._encoder.kill()                             # ffmpeg ends; the partial file goes
        self.tmp.unlink(missing_ok=True)

    def _raise_error(self) -> None:
        if self._error is not None:
            if isinstance(self._error, OSError):
                raise _write_error(self.path, self._error) from None
            raise self._error


def _write_error(path: Path, e: OSError) -> UserError:
    """One line naming the file and the cause (ffmpeg's message, or the system's)."""
    reason = os_reason(e)
    full = e.errno in (errno.ENOSPC, errno.EDQUOT) or any(
        os.strerror(n) in reason for n in (errno.ENOSPC, errno.EDQUOT))
    then = "; free space or choose another output folder" if full else ""
    return UserError(f"{path}: could not write the video ({reason}){then}.")


def save_png(path: Path, image: np.ndarray, comment: str = "") -> Path:
    """Write (H, W, 3) uint8 `image` as a PNG atomically, `comment` under the text key RECORD_KEY."""
    text = PngImagePlugin.PngInfo()
    text.add_text(RECORD_KEY, comment)
    try:
        with atomic_path(path) as tmp:
            Image.fromarray(image).save(tmp, format="PNG", pnginfo=text)
    except OSError as e:
        raise WriteError(path, os_reason(e)) from None
    return path
