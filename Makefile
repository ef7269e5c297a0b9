# Thin entry points; the work is done by the scripts they call.
.PHONY: bootstrap test demo lint clean-build

bootstrap:
	@bash scripts/bootstrap.sh

test:
	@bash scripts/test.sh

demo:
	@bash scripts/demo.sh

lint:
	@bash scripts/test.sh test/test_flake8.py test/test_pep257.py

# Removes colcon output only (never the virtualenv).
clean-build:
	rm -rf build install log .bootstrap-stamp-build
