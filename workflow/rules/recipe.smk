# The pretraining recipe study (benchmarks/recipe.py), not part of `all`: `snakemake --cores 2 recipe`.
# Every variant of the configured CellLM pretrains on the same token store, vocabulary and gene
# embeddings as the configured run, and is scored zero-shot on simulated cells held out from
# pretraining (results/data/recipe_heldout_*.h5ad) and, beside, on pbmc68k_reduced.


rule recipe_data:
    input:
        genes_from=f"results/data/{PBMC68K}.h5ad",
    output:
        **{key: f"results/data/{name}.h5ad" for key, name in RECIPE_DATASETS.items()},
    log:
        "logs/recipe/data.log",
    conda:
        ENV
    threads: 1
    params:
        simulation=canonical(config["simulation"]),
    script:
        "../scripts/recipe_data.py"


rule recipe_pretrain:
    input:
        unpack(recipe_simulated_corpus),
    output:
        directory("results/recipe/runs/{variant}"),
    log:
        "logs/recipe/pretrain_{variant}.log",
    wildcard_constraints:
        variant="|".join(re.escape(name) for name in recipe_study.STUDY),
    conda:
        ENV
    threads: 1
    params:
        celllm=recipe_options,
    script:
        "../scripts/pretrain.py"


rule recipe_score:
    input:
        unpack(recipe_score_inputs),
    output:
        "results/recipe/scores/{variant}.json",
    log:
        "logs/recipe/score_{variant}.log",
    wildcard_constraints:
        variant="|".join(re.escape(name) for name in [*recipe_study.STUDY, recipe_study.PCA]),
    conda:
        ENV
    threads: 1
    script:
        "../scripts/recipe_score.py"


rule recipe:
    input:
        scores=expand("results/recipe/scores/{variant}.json", variant=[*recipe_study.STUDY, recipe_study.PCA]),
    output:
        csv=report("results/recipe/recipes.csv", caption="../report/recipe.rst", category="Recipe study"),
        md="results/recipe/recipes.md",
        png=report("results/figures/recipe.png", caption="../report/recipe.rst", category="Recipe study"),
        pdf="results/figures/recipe.pdf",
    log:
        "logs/recipe/table.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/recipe_table.py"
