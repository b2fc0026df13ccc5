# SPDX-License-Identifier: MIT
"""kashim_word: a value of kashim_config as kashim reads it, for
/etc/kashim.conf and for kashim dropin --cgroup's options alike."""


def kashim_word(value):
    """YAML's booleans (on/off, yes/no, true/false all load as Python's
    True and False, which would print as True and False) as kashim's own
    words on and off; a list as the comma-separated list kashim takes;
    anything else as its text."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ", ".join(kashim_word(v) for v in value)
    return str(value)


class FilterModule:
    def filters(self):
        return {"kashim_word": kashim_word}
