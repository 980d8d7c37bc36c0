"""``python -m golongrl.cli``: the same app as the ``golongrl`` console script."""

from golongrl.cli import main

main()
