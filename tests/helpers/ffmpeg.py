"""Videos as they come from the wild, and FFmpeg's own decode of them as a player shows them.

`encode` writes frames with PyAV's encoders in the ways the project's own writer does not (display
rotation, irregular timestamps, B-frames in AVI, an audio track, no video at all); `ffmpeg_frames`
decodes a file with the FFmpeg command-line tool (the static binary of the imageio-ffmpeg wheel, a
test dependency), which applies the display rotation, frame by frame (no frames dropped or repeated).
`zero_bytes` damages a file in the middle.
"""
import subprocess
from fractions import Fraction

import av
import imageio_ffmpeg
import numpy as np

MILLISECOND = Fraction(1, 1000)


def encode(path, frames, codec='libx264', options=None, fps=25, pix_fmt='yuv420p', rotation=0, pts=None,
           audio=False, video=True):
    """Encode uint8 frames (T, H, W, 3) into `path` (container from the extension). `rotation`:
    degrees counter-clockwise a player turns the frames by (the display matrix); `pts`: frame
    timestamps in milliseconds (variable frame rate); `audio`: add a second of AAC; `video=False`:
    audio only. Returns `path`."""
    with av.open(str(path), 'w') as container:
        if video:
            stream = container.add_stream(codec, rate=fps, options=dict(options or {}))
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
            if pts is not None:
                stream.codec_context.time_base = MILLISECOND
            if rotation:
                stream.set_display_rotation(rotation)
        if audio or not video:
            sound = container.add_stream('aac', rate=16000, layout='mono')
            tone = (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)[None]
            for start in range(0, 16000, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format='flt',
                                                   layout='mono')
                chunk.sample_rate, chunk.pts = 16000, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
        if video:
            for i, array in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format='rgb24')
                if pts is not None:
                    frame.pts, frame.time_base = pts[i], MILLISECOND
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    return str(path)


def ffmpeg_frames(path):
    """(T, H, W, 3) uint8 RGB frames of the first video stream as FFmpeg shows them (display
    rotation applied, every decoded frame once)."""
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-v', 'error', '-nostdin', '-i', str(path), '-map',
                          '0:v:0', '-fps_mode', 'passthrough', '-f', 'image2pipe', '-c:v', 'ppm', '-'],
                         capture_output=True, timeout=60)
    data, frames, pos = run.stdout, [], 0
    while pos < len(data):  # binary PPM: "P6 <width> <height> 255" + one whitespace + pixels
        fields, end = data[pos:pos + 64].split(maxsplit=4)[:4], pos
        for field in fields:
            end = data.index(field, end) + len(field)
        width, height = int(fields[1]), int(fields[2])
        start = end + 1
        frames.append(np.frombuffer(data[start:start + width * height * 3], np.uint8).reshape(height, width, 3))
        pos = start + width * height * 3
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def zero_bytes(path, out, count, at=0.5):
    """Copy `path` to `out` with `count` bytes zeroed from the fraction `at` of the file on."""
    data = bytearray(open(path, 'rb').read())
    start = int(len(data) * at)
    data[start:start + count] = bytes(min(count, len(data) - start))
    with open(out, 'wb') as f:
        f.write(data)
    return str(out)
