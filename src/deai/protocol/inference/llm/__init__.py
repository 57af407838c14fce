"""Verified LLM generation: a host answers a generation request with tokens and a compact proof
of its activations; a verifier checks it with one prefill pass against calibrated thresholds.

- :mod:`~deai.protocol.inference.llm.request`: the typed request and answer records;
- :mod:`~deai.protocol.inference.llm.sampling`: greedy and seeded inverse-CDF token choice;
- :mod:`~deai.protocol.inference.llm.generate`: generation with the proof (alone or batched);
- :mod:`~deai.protocol.inference.llm.proof`: the commitment (258 bytes per 32 tokens) and its
  comparison;
- :mod:`~deai.protocol.inference.llm.verify`: statistics, thresholds and the verdict;
- :mod:`~deai.protocol.inference.llm.calibrate`: fitting the thresholds from honest variation;
- :mod:`~deai.protocol.inference.llm.cheaters`: the cheating hosts the verifier must catch;
- :mod:`~deai.protocol.inference.llm.tiny`: a tiny in-process model and tokenizer for tests.

The design, the calibration and the measured figures are in ``docs/llm-serving.md``.
"""

from deai.protocol.inference.llm.calibrate import VARIATIONS, HonestSample, Variation, calibrate, fit
from deai.protocol.inference.llm.cheaters import LLM_CHEATERS, HonestHost, LLMHost, cheater_names, make_host
from deai.protocol.inference.llm.errors import BadProof, BadRequest, LLMError
from deai.protocol.inference.llm.generate import decode, generate, generate_batch, model_in
from deai.protocol.inference.llm.proof import CHUNK, TOPK, Proof, build_proof, compare
from deai.protocol.inference.llm.request import Generation, GenerationRequest, Sampling, chat_prompt
from deai.protocol.inference.llm.verify import Statistics, Thresholds, ThresholdSet, Verdict, measure, verify

__all__ = [
    "CHUNK",
    "LLM_CHEATERS",
    "TOPK",
    "VARIATIONS",
    "BadProof",
    "BadRequest",
    "Generation",
    "GenerationRequest",
    "HonestHost",
    "HonestSample",
    "LLMError",
    "LLMHost",
    "Proof",
    "Sampling",
    "Statistics",
    "ThresholdSet",
    "Thresholds",
    "Variation",
    "Verdict",
    "build_proof",
    "calibrate",
    "chat_prompt",
    "cheater_names",
    "compare",
    "decode",
    "fit",
    "generate",
    "generate_batch",
    "make_host",
    "measure",
    "model_in",
    "verify",
]
