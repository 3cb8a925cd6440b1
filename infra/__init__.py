"""fanout's Pulumi program: one ComponentResource per building block, plus packaging and an offline plan.

Nothing outside infra/ (and its tests) imports this package.
"""
