"""Score a saved model on labeled data: `python evaluate.py MODEL SOURCE... [--json]`.

The same as `qism evaluate`; the work is done by `qism.evaluation.evaluate_models`.
"""

import typer
from qism.cli import evaluate_command

if __name__ == "__main__":
    typer.run(evaluate_command)
