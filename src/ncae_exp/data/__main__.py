"""``python -m ncae_exp.data``: print the facts of every registered dataset.

The registry (:mod:`ncae_exp.data.registry`) is the only place these facts are written down;
this prints them as a markdown table instead of copying them into documentation.
"""

from ncae_exp.data.registry import facts_table


def main() -> None:
    print(facts_table())


if __name__ == "__main__":
    main()
