"""The policy pack entry point: ``pulumi preview --policy-pack policies`` runs this file.

Building ``PolicyPack`` starts the analyzer's gRPC server and blocks, so it
happens here only; everything else imports the rules from ``policies.catalog``.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.catalog import ALL_POLICIES

PolicyPack(
    name="recplat",
    policies=list(ALL_POLICIES),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="recplat security and operability rules for AKS, the lake, Key Vault, "
    "PostgreSQL, identities, tags and brand workloads.",
    display_name="recplat platform policies",
    provider="azure",
    tags=["azure", "kubernetes", "recplat"],
)
