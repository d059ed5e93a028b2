from recipekit.cli import run

run()
