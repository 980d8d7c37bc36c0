"""Activate golongrl's verl plugin on import, for verl's stock entry point.

``VERL_USE_EXTERNAL_MODULES=golongrl.engines.verl.autoload python -m verl.trainer.main_ppo ...``
makes ``verl/__init__.py`` import this module in every process that imports verl, the Ray
TaskRunner actor included (on a multi-node cluster also pass the variable to the workers:
``+ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES=golongrl.engines.verl.autoload``).
``golongrl train --engine verl`` does not need it: it installs the plugin in the TaskRunner itself.
"""

from golongrl.engines.verl.plugin import install

install(announce=True)
