"""eSpeak NG through ctypes, from the library and voice data that PyPI's ``espeakng-loader`` ships.

The engine keeps hidden state from one utterance to the next and seeds its noise generator from the clock, so a
shared engine does not give the same audio for the same call twice. :func:`synthesize` therefore loads a private
copy of the library, initialises it, seeds its noise generator, speaks, and unloads it (about 8 ms a call): the
result depends on the arguments alone. Calls are serialised by one lock (the engine is process-global).
"""

from __future__ import annotations

import ctypes
import threading
import atexit
import shutil
import tempfile
from pathlib import Path
from functools import lru_cache

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE = 1
ESPEAK_VOLUME = 2
ESPEAK_PITCH = 3
ESPEAK_RANGE = 4
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1

#: eSpeak NG's voice variants with a stated gender (``m1``-``m8`` male, ``f1``-``f5`` female).
MALE_VARIANTS = tuple(f"m{i}" for i in range(1, 9))
FEMALE_VARIANTS = tuple(f"f{i}" for i in range(1, 6))

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    """The speech engine could not be loaded or refused a voice."""


_engine_lock = threading.Lock()


@lru_cache(maxsize=1)
def _private_library() -> tuple[str, bytes, bytes]:
    """A private copy of libespeak-ng (so it loads as its own instance) and the two candidate data paths."""
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise EspeakError("espeakng-loader is not installed: `pip install espeakng-loader`") from e
    src = Path(espeakng_loader.get_library_path())
    folder = Path(tempfile.mkdtemp(prefix="samaf-espeak-"))
    atexit.register(shutil.rmtree, folder, True)
    dst = folder / ("libespeak-ng-private" + "".join(src.suffixes))
    shutil.copyfile(src, dst)
    try:
        _unload(ctypes.CDLL(str(dst)))
    except OSError as e:
        raise EspeakError(f"cannot load a private copy of the eSpeak NG library from {folder} ({e}); if that folder "
                          "does not allow executables, set TMPDIR to one that does") from e
    data = Path(espeakng_loader.get_data_path())
    return str(dst), str(data.parent).encode(), str(data).encode()


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.srand.argtypes = [ctypes.c_uint]
        return libc
    except (OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def synthesize(text: str, language: str = "en-us", variant: str | None = None, rate: int = 175, pitch: int = 50,
          pitch_range: int = 50, noise_seed: int = 1) -> tuple[np.ndarray, int]:
    """Speak ``text`` with a fresh eSpeak NG engine: the result depends on the arguments only.

    ``language`` is an eSpeak NG language/accent name (``"en-us"``, ``"fr"``, ``"es-419"``), ``variant`` a voice
    variant (``"m3"``, ``"f2"``), ``rate`` words per minute, ``pitch`` and ``pitch_range`` 0-100, ``noise_seed`` the seed of the engine's
    noise generator (breath noise of breathy variants; the engine would otherwise seed it from the clock). The
    library is loaded from a private copy, initialised, used and unloaded, so no state survives from one call to
    the next.

    Returns
    -------
    audio : np.ndarray, float32, shape (n,)
        Samples in [-1, 1].
    sr : int
        The engine's rate (22,050 Hz).
    """
    if not text.strip():
        raise ValueError("synthesize: text is empty")
    path, data_parent, data = _private_library()
    name = f"{language}+{variant}" if variant else language
    chunks: list[np.ndarray] = []

    def collect(wav, numsamples, events):
        if numsamples > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    callback = _SYNTH_CALLBACK(collect)
    with _engine_lock:
        lib = ctypes.CDLL(path)
        try:
            _declare(lib)
            sr = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, 0)
            if sr <= 0:
                sr = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
            if sr <= 0:
                raise EspeakError(f"espeak_Initialize failed with the voice data at {data.decode()}")
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(name.encode()) != 0:
                lib.espeak_Terminate()
                raise EspeakError(f"eSpeak NG has no voice {name!r}: pick a language from its voice list")
            lib.espeak_SetParameter(ESPEAK_RATE, int(rate), 0)
            lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
            lib.espeak_SetParameter(ESPEAK_RANGE, int(pitch_range), 0)
            lib.espeak_SetParameter(ESPEAK_VOLUME, 100, 0)
            # the engine seeds its noise generator from the clock at initialisation: seed it ourselves
            if hasattr(lib, "espeak_ng_SetRandSeed"):
                lib.espeak_ng_SetRandSeed(int(noise_seed) & 0x7FFFFFFF)
            elif (libc := _libc()) is not None:  # older engines draw it from the C library's rand()
                libc.srand(int(noise_seed) & 0xFFFFFFFF)
            buf = text.encode("utf-8") + b"\0"
            err = lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            lib.espeak_Terminate()
            if err != 0:
                raise EspeakError(f"espeak_Synth failed (code {err}) for voice {name!r}")
        finally:
            _unload(lib)
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return pcm.astype(np.float32) / 32768.0, int(sr)


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None


def _unload(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


def sample_rate() -> int:
    """The engine's native output rate in Hz (22,050 for eSpeak NG)."""
    return synthesize("a")[1]
