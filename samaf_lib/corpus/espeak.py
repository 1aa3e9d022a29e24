"""eSpeak NG through ctypes, from the library and voice data that PyPI's ``espeakng-loader`` ships.

The engine is process-global and not thread-safe: every call goes through one lock, and the voice and its
parameters are set again before each utterance so that calls never leak state into each other.
"""

from __future__ import annotations

import ctypes
import threading
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
_lock = threading.Lock()
_chunks: list[np.ndarray] = []


class EspeakError(RuntimeError):
    """The speech engine could not be loaded or refused a voice."""


def _collect(wav, numsamples, events):  # called by the engine from inside espeak_Synth
    if numsamples > 0 and wav:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
    return 0


_callback = _SYNTH_CALLBACK(_collect)  # kept alive for the life of the process


@lru_cache(maxsize=1)
def _engine() -> tuple[ctypes.CDLL, int]:
    try:
        import espeakng_loader
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise EspeakError("espeakng-loader is not installed: `pip install espeakng-loader`") from e
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.c_void_p, ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    data = espeakng_loader.get_data_path()  # .../espeak-ng-data
    parent = str(__import__("pathlib").Path(data).parent)
    sr = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, parent.encode(), 0)
    if sr <= 0:
        sr = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
    if sr <= 0:
        raise EspeakError(f"espeak_Initialize failed with the voice data at {data}")
    lib.espeak_SetSynthCallback(_callback)
    return lib, sr


def sample_rate() -> int:
    """The engine's native output rate in Hz (22,050 for eSpeak NG)."""
    return _engine()[1]


def synthesize(text: str, voice: str = "en-us", variant: str | None = None, rate: int = 175,
               pitch: int = 50, pitch_range: int = 50) -> tuple[np.ndarray, int]:
    """Speak ``text`` and return the audio.

    Parameters
    ----------
    text : str
        What to say (UTF-8).
    voice : str
        An eSpeak NG language/accent name such as ``"en-us"``, ``"fr"`` or ``"es-419"``.
    variant : str or None
        A voice variant such as ``"m3"`` or ``"f2"``, appended as ``voice+variant``.
    rate : int
        Words per minute (80-450).
    pitch, pitch_range : int
        Base pitch and pitch range, 0-100.

    Returns
    -------
    audio : np.ndarray, float32, shape (n,)
        Samples in [-1, 1].
    sr : int
        The engine's sample rate.
    """
    if not text.strip():
        raise ValueError("synthesize: text is empty")
    lib, sr = _engine()
    name = f"{voice}+{variant}" if variant else voice
    with _lock:
        if lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise EspeakError(f"eSpeak NG has no voice {name!r}: pick a language from its voice list")
        lib.espeak_SetParameter(ESPEAK_RATE, int(rate), 0)
        lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
        lib.espeak_SetParameter(ESPEAK_RANGE, int(pitch_range), 0)
        lib.espeak_SetParameter(ESPEAK_VOLUME, 100, 0)
        _chunks.clear()
        buf = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise EspeakError(f"espeak_Synth failed (code {err}) for voice {name!r}")
        pcm = np.concatenate(_chunks) if _chunks else np.zeros(0, np.int16)
        _chunks.clear()
    return (pcm.astype(np.float32) / 32768.0), sr
