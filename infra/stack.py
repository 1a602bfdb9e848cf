"""The stack's configuration inside the Pulumi program (dualwrite/config.py parses it)."""

from __future__ import annotations

import pulumi

from dualwrite.config import PROJECT, ConfigError, StackConfig, parse


def stack_config() -> StackConfig:
    """The typed config; a bad value stops the program with the parser's one paragraph.

    The password itself stays with the engine: the provider receives it, decrypted, in
    `configure`; here only its presence is read.
    """
    config = pulumi.Config(PROJECT)
    prefix = f"{PROJECT}:"
    # Every key of the project's namespace the stack sets, so a misspelt one is refused too.
    present = [key[len(prefix):] for key in pulumi.runtime.config.CONFIG.get() if key.startswith(prefix)]
    raw = {key: config.get(key) for key in present if key != "db_password"}
    raw = {key: value for key, value in raw.items() if value is not None}
    try:
        parsed = parse(pulumi.get_stack(), raw, has_password=config.get_secret("db_password") is not None)
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None
    refusal = parsed.deploy_refusal()
    if refusal and not pulumi.runtime.is_dry_run():  # a preview through the pooler is read-only and safe
        raise pulumi.RunError(refusal)
    return parsed
