"""tinker-cookbook 0.6.1 workflows, run offline against a local Tinker server.

Each workflow runs in a fresh interpreter, with the official client
(``python workflows.py NAME ...``) or with tinkex installed as tinker
(``python -m tinkex.as_tinker workflows.py NAME ...``)::

    python workflows.py sl_basic --base-url http://127.0.0.1:PORT --log-path DIR --data-dir DIR

The environment points the Hugging Face cache at a folder that holds the tokenizer of
MODEL_NAME (see tinkex.local.hf_tokenizer) with HF_HUB_OFFLINE=1, and TINKER_API_KEY at the
server's key. Each workflow runs the recipe's own code and config with very few steps and tiny
local data; the cookbook writes its metrics to LOG_PATH/metrics.jsonl (the workflows that are
not training loops log theirs there with the cookbook's ml_log too).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL_NAME = "Qwen/Qwen3-8B"
RENDERER_NAME = "qwen3"
LORA_RANK = 4
#: The exit status of a run that --crash-after-step killed.
CRASH_EXIT_CODE = 17
#: --spawn-rollouts prints this, then the module of the rollout worker's tinker.ServiceClient.
WORKER_TINKER_LINE = "rollout worker tinker.ServiceClient module: "


# --- local data -------------------------------------------------------------------------------


def conversations(n: int) -> list[dict[str, Any]]:
    """``n`` short chat conversations (a few dozen bytes each, so they fit the tiny model)."""
    rows = []
    for i in range(n):
        a, b = i % 7 + 1, i % 5 + 2
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"What is {a}+{b}?"},
                    {"role": "assistant", "content": f"{a}+{b}={a + b}"},
                ]
            }
        )
    return rows


def gsm8k_rows(n: int) -> list[dict[str, Any]]:
    """``n`` rows shaped like openai/gsm8k's (``question``, ``answer`` ending in ``#### N``)."""
    return [
        {"question": f"Sum {i} and 3.", "answer": f"{i} + 3 = {i + 3}\n#### {i + 3}"}
        for i in range(n)
    ]


def comparisons(n: int) -> list[dict[str, Any]]:
    """``n`` labeled comparisons in the JSONL shape of ComparisonBuilderFromJsonl."""
    rows = []
    for i in range(n):
        a, b = i % 4 + 1, i % 3 + 1
        rows.append(
            {
                "comparison": {
                    "prompt_conversation": [{"role": "user", "content": f"{a}+{b}?"}],
                    "completion_A": [{"role": "assistant", "content": f"{a + b}"}],
                    "completion_B": [{"role": "assistant", "content": f"{a + b + 1}"}],
                },
                "label": "A",
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def serve_datasets_locally(tables: dict[str, list[dict[str, Any]]]) -> None:
    """Make ``datasets.load_dataset(path[, name])`` return a local train split for the Hub
    datasets the loop recipes load (the recipes themselves stay unchanged)."""
    import datasets

    def load_dataset(path: str, name: str | None = None, **_: Any) -> Any:
        key = path if name is None else f"{path}:{name}"
        if key not in tables:
            raise RuntimeError(f"workflows.py has no local copy of dataset {key!r}")
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(tables[key])})

    datasets.load_dataset = load_dataset


def crash_after_step(step: int) -> None:
    """Kill the process (no clean-up, like a crash) right after metrics for ``step`` are
    logged: a stand-in for a machine dying mid-run."""
    from tinker_cookbook.utils import ml_log

    setup_logging = ml_log.setup_logging

    def setup_logging_that_crashes(*args: Any, **kwargs: Any) -> Any:
        ml_logger = setup_logging(*args, **kwargs)
        log_metrics = ml_logger.log_metrics

        def log_and_maybe_crash(metrics: dict[str, Any], **kwargs: Any) -> None:
            log_metrics(metrics, **kwargs)
            if kwargs.get("step") == step:
                os._exit(CRASH_EXIT_CODE)

        ml_logger.log_metrics = log_and_maybe_crash  # type: ignore[method-assign]
        return ml_logger

    ml_log.setup_logging = setup_logging_that_crashes


def refuse_network() -> None:
    """Make name resolution of anything but loopback fail at once: the cookbook asks the
    internet for a model-pricing file (and would for Hub data); offline runs must not try."""
    resolve = socket.getaddrinfo
    loopback = {"localhost", "127.0.0.1", "::1"}

    def getaddrinfo_loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in loopback and not name.startswith("127."):
            raise socket.gaierror(socket.EAI_NONAME, f"workflows.py runs offline: {name!r}")
        return resolve(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo_loopback_only


# --- supervised --------------------------------------------------------------------------------


def sl_common_config(batch_size: int) -> Any:
    from tinker_cookbook.renderers import TrainOnWhat
    from tinker_cookbook.supervised.types import ChatDatasetBuilderCommonConfig

    return ChatDatasetBuilderCommonConfig(
        model_name_for_tokenizer=MODEL_NAME,
        renderer_name=RENDERER_NAME,
        max_length=128,
        batch_size=batch_size,
        train_on_what=TrainOnWhat.ALL_ASSISTANT_MESSAGES,
    )


def sl_basic(args: argparse.Namespace) -> None:
    """recipes.sl_basic on a local conversations file: 4 steps, a checkpoint every 2 and an
    NLL evaluation every 2 on 4 held-out conversations."""
    from tinker_cookbook.recipes import sl_basic as recipe
    from tinker_cookbook.supervised.data import FromConversationFileBuilder

    if args.crash_after_step is not None:
        crash_after_step(args.crash_after_step)
    data = write_jsonl(args.data_dir / "conversations.jsonl", conversations(20))
    builder = FromConversationFileBuilder(
        common_config=sl_common_config(batch_size=4), file_path=str(data), test_size=4
    )
    blueprint = recipe.build_config_blueprint(MODEL_NAME).apply(
        {
            "log_path": str(args.log_path),
            "base_url": args.base_url,
            "dataset_builder": builder,
            "lora_rank": LORA_RANK,
            "learning_rate": 1e-2,
            "save_every": 2,
            "eval_every": 2,
        }
    )
    # An existing log folder makes the recipe ask what to do: the resume workflow answers
    # "resume" on stdin, as a person would.
    recipe.main(blueprint.make())


def sl_loop(args: argparse.Namespace) -> None:
    """recipes.sl_loop (the flat supervised loop) on local no_robots-shaped data: 3 steps."""
    import chz
    from tinker_cookbook.recipes import sl_loop as recipe

    serve_datasets_locally({"HuggingFaceH4/no_robots": conversations(12)})
    config = chz.Blueprint(recipe.Config).apply(
        {
            "base_url": args.base_url,
            "log_path": str(args.log_path),
            "model_name": MODEL_NAME,
            "batch_size": 4,
            "learning_rate": 1e-2,
            "max_length": 128,
            "lora_rank": LORA_RANK,
            "save_every": 2,
        }
    )
    recipe.main(config.make())


# --- reinforcement learning -----------------------------------------------------------------


def arithmetic_builder(batch_size: int, group_size: int, n_batches: int) -> Any:
    from tinker_cookbook.recipes.math_rl.arithmetic_env import ArithmeticDatasetBuilder

    return ArithmeticDatasetBuilder(
        batch_size=batch_size,
        model_name_for_tokenizer=MODEL_NAME,
        renderer_name=RENDERER_NAME,
        n_batches=n_batches,
        group_size=group_size,
    )


def rl_basic(args: argparse.Namespace) -> None:
    """recipes.rl_basic with the local arithmetic environment (its GSM8K data is on the Hub):
    2 steps of 2 groups of 2 rollouts, 8 tokens each."""
    from tinker_cookbook.recipes import rl_basic as recipe

    if args.spawn_rollouts:
        use_spawn_rollout_pool()
    blueprint = recipe.build_config_blueprint(MODEL_NAME).apply(
        {
            "log_path": str(args.log_path),
            "base_url": args.base_url,
            "dataset_builder": arithmetic_builder(batch_size=2, group_size=2, n_batches=2),
            "lora_rank": LORA_RANK,
            "learning_rate": 1e-2,
            "max_tokens": 8,
            "save_every": 0,
        }
    )
    recipe.main(blueprint.make())


def use_spawn_rollout_pool() -> None:
    """Run the group rollouts in a one-worker "spawn" ProcessPoolExecutor (the cookbook
    pickles the SamplingClient to it)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tinker_cookbook.rl.rollouts import set_rollout_executor

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    # Which package the worker's `import tinker` gives (the suite checks it per client).
    module = pool.submit(eval, "__import__('tinker').ServiceClient.__module__").result()
    print(f"{WORKER_TINKER_LINE}{module}", flush=True)
    set_rollout_executor(pool)


def rl_loop(args: argparse.Namespace) -> None:
    """recipes.rl_loop (the flat GRPO loop) on local gsm8k-shaped data: 2 steps of 2 problems
    with 2 samples of 8 tokens, with the given loss (the recipe's default is stable_reinforce)."""
    import chz
    from tinker_cookbook.recipes import rl_loop as recipe

    serve_datasets_locally({"openai/gsm8k:main": gsm8k_rows(4)})
    values: dict[str, Any] = {
        "base_url": args.base_url,
        "log_path": str(args.log_path),
        "model_name": MODEL_NAME,
        "batch_size": 2,
        "group_size": 2,
        "learning_rate": 1e-2,
        "lora_rank": LORA_RANK,
        "max_tokens": 8,
        "save_every": 0,
    }
    if args.loss_fn:
        values["loss_fn"] = args.loss_fn
    recipe.main(chz.Blueprint(recipe.Config).apply(values).make())


def math_rl_argv(args: argparse.Namespace) -> list[str]:
    """The command line of ``python -m tinker_cookbook.recipes.math_rl.train`` for a tiny run
    of the arithmetic environment (2 steps of 2 groups of 2)."""
    argv = [
        f"model_name={MODEL_NAME}",
        f"lora_rank={LORA_RANK}",
        "env=arithmetic",
        "group_size=2",
        "groups_per_batch=2",
        "max_tokens=5",
        "learning_rate=1e-2",
        "max_steps=2",
        "eval_every=0",
        "save_every=0",
        f"log_path={args.log_path}",
        f"base_url={args.base_url}",
        "behavior_if_log_dir_exists=raise",
    ]
    if args.loss_fn:
        argv.append(f"loss_fn={args.loss_fn}")
    if args.max_steps_off_policy is not None:
        argv.append(f"max_steps_off_policy={args.max_steps_off_policy}")
    return argv


def math_rl(args: argparse.Namespace) -> None:
    """recipes.math_rl.train as its own command line would run it."""
    import runpy

    sys.argv = ["tinker_cookbook.recipes.math_rl.train", *math_rl_argv(args)]
    runpy.run_module("tinker_cookbook.recipes.math_rl.train", run_name="__main__")


# --- preference -------------------------------------------------------------------------------


def dpo(args: argparse.Namespace) -> None:
    """preference.train_dpo on local comparisons: 2 steps of 2 pairs."""
    from tinker_cookbook.preference import train_dpo
    from tinker_cookbook.preference.dpo_datasets import DPODatasetBuilderFromComparisons
    from tinker_cookbook.preference.preference_datasets import ComparisonBuilderFromJsonl

    data = write_jsonl(args.data_dir / "comparisons.jsonl", comparisons(4))
    builder = DPODatasetBuilderFromComparisons(
        common_config=sl_common_config(batch_size=2),
        comparison_builder=ComparisonBuilderFromJsonl(train_path=str(data)),
    )
    config = train_dpo.Config(
        log_path=str(args.log_path),
        model_name=MODEL_NAME,
        recipe_name="recipe_preference_dpo",
        renderer_name=RENDERER_NAME,
        dataset_builder=builder,
        learning_rate=1e-2,
        lora_rank=LORA_RANK,
        base_url=args.base_url,
        save_every=0,
        eval_every=0,
    )
    train_dpo.main(config)


# --- evaluators, completers, weights --------------------------------------------------------------


async def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    import tinker
    from tinker_cookbook import renderers
    from tinker_cookbook.completers import TinkerMessageCompleter, TinkerTokenCompleter
    from tinker_cookbook.rl.metric_util import RLTestSetEvaluator
    from tinker_cookbook.supervised.data import conversation_to_datum
    from tinker_cookbook.supervised.nll_evaluator import NLLEvaluator, SamplerNLLEvaluator
    from tinker_cookbook.tokenizer_utils import get_tokenizer

    tokenizer = get_tokenizer(MODEL_NAME)
    renderer = renderers.get_renderer(RENDERER_NAME, tokenizer)
    data = [conversation_to_datum(row["messages"], renderer, 128) for row in conversations(4)]
    service = tinker.ServiceClient(base_url=args.base_url)
    try:
        trainer = await service.create_lora_training_client_async(MODEL_NAME, rank=LORA_RANK)
        sampler = await trainer.save_weights_and_get_sampling_client_async()
        metrics: dict[str, Any] = {}
        metrics.update(await NLLEvaluator(data, name="train_nll")(trainer))
        metrics.update(
            await SamplerNLLEvaluator(data, name="sampler", tokenizer=tokenizer)(sampler)
        )
        # greedy, so both clients must get the same tokens
        prompt = renderer.build_generation_prompt([{"role": "user", "content": "Hi"}])
        completer = TinkerTokenCompleter(sampler, max_tokens=6, temperature=0.0)
        tokens = await completer(prompt, renderer.get_stop_sequences())
        metrics["token_completer/tokens"] = json.dumps(tokens.tokens)
        metrics["token_completer/logprob_sum"] = sum(tokens.maybe_logprobs or [])
        message = await TinkerMessageCompleter(sampler, renderer, max_tokens=6, temperature=0.0)(
            [{"role": "user", "content": "Hi"}]
        )
        metrics["message_completer/content"] = renderers.get_text_content(message)
        dataset, _ = await arithmetic_builder(batch_size=2, group_size=2, n_batches=1)()
        rl_metrics = await RLTestSetEvaluator(dataset, max_tokens=5, name="rl_test")(sampler)
        metrics["rl_test/keys"] = json.dumps(sorted(rl_metrics))
        return metrics
    finally:
        service.close("success")


def evaluators(args: argparse.Namespace) -> None:
    """The supervised NLL evaluators (training and sampling client), the token and message
    completers (greedy) and the RL test-set evaluator on a fresh LoRA model."""
    from tinker_cookbook.utils import ml_log

    ml_logger = ml_log.setup_logging(str(args.log_path), do_configure_logging_module=False)
    ml_logger.log_metrics(asyncio.run(evaluate(args)), step=0)
    ml_logger.close()


def without_run_ids(value: Any) -> Any:
    """``value`` with every ``training_run_id`` entry dropped (the local server names the run
    in its adapter_config.json; two runs never share an id)."""
    if isinstance(value, dict):
        return {k: without_run_ids(v) for k, v in value.items() if k != "training_run_id"}
    if isinstance(value, list):
        return [without_run_ids(v) for v in value]
    return value


def weights_download(args: argparse.Namespace) -> None:
    """weights.download of a training checkpoint (tinker://.../weights/..., exported
    age-encrypted and decrypted locally) and of external weights (save_weights_external), after
    one supervised step; the metrics are the downloaded files' sizes and digests (JSON files:
    their content, run ids aside)."""
    import tinker
    from tinker_cookbook import renderers, weights
    from tinker_cookbook.supervised.data import conversation_to_datum
    from tinker_cookbook.tokenizer_utils import get_tokenizer
    from tinker_cookbook.utils import ml_log

    renderer = renderers.get_renderer(RENDERER_NAME, get_tokenizer(MODEL_NAME))
    data = [conversation_to_datum(row["messages"], renderer, 128) for row in conversations(2)]
    service = tinker.ServiceClient(base_url=args.base_url)
    try:
        trainer = service.create_lora_training_client(MODEL_NAME, rank=LORA_RANK).result()
        trainer.forward_backward(data, "cross_entropy").result()
        trainer.optim_step(tinker.AdamParams(learning_rate=1e-2)).result()
        paths = {
            "state": trainer.save_state("state").result().path,
            "external": trainer.save_weights_external("external").result().path,
        }
    finally:
        service.close("success")
    metrics: dict[str, Any] = {}
    for kind in args.kinds.split(","):
        path = paths[kind]
        target = str(args.data_dir / kind)
        out = Path(weights.download(tinker_path=path, output_dir=target, base_url=args.base_url))
        for file in sorted(p for p in out.rglob("*") if p.is_file()):
            name = f"{kind}/{file.relative_to(out)}"
            if file.suffix == ".json":
                metrics[name] = json.dumps(without_run_ids(json.loads(file.read_text())))
            else:
                metrics[f"{name}:bytes"] = file.stat().st_size
                metrics[f"{name}:sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    ml_logger = ml_log.setup_logging(str(args.log_path), do_configure_logging_module=False)
    ml_logger.log_metrics(metrics, step=0)
    ml_logger.close()


WORKFLOWS: dict[str, Callable[[argparse.Namespace], None]] = {
    "sl_basic": sl_basic,
    "sl_loop": sl_loop,
    "rl_basic": rl_basic,
    "rl_loop": rl_loop,
    "math_rl": math_rl,
    "dpo": dpo,
    "evaluators": evaluators,
    "weights_download": weights_download,
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("workflow", choices=sorted(WORKFLOWS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--log-path", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--crash-after-step", type=int, help="sl_basic: die after this step")
    parser.add_argument("--spawn-rollouts", action="store_true", help="rl_basic: process pool")
    parser.add_argument("--loss-fn", help="rl_loop/math_rl: loss instead of the recipe's")
    parser.add_argument("--max-steps-off-policy", type=int, help="math_rl: async RL")
    parser.add_argument("--kinds", default="state,external", help="weights_download: which")
    args = parser.parse_args(argv)
    refuse_network()
    WORKFLOWS[args.workflow](args)


if __name__ == "__main__":
    main(sys.argv[1:])
