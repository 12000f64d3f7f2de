"""Alert rules: config models, the pure rule engine, and its Beam runners.

- :mod:`transforms.rules.config`: rule, silence and route config models
- :mod:`transforms.rules.engine`: the state machine, a pure function
- :mod:`transforms.rules.select`: aggregate rows -> per-(rule, group) window values
- :mod:`transforms.rules.batch`: :class:`EvaluateRules` (GroupByKey + ordered evaluation)
- :mod:`transforms.rules.streaming`: :class:`EvaluateRulesStreaming` (keyed state + timers)
- :mod:`transforms.rules.notify`: silences and routing
"""
