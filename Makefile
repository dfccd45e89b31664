# DTM Estimator — set-up, demo, tests, packaging and training. Every target installs what it needs.
SHELL := /bin/bash
PY := .venv/bin/python
VERSION := $(shell sed -n 's/^version=//p' metadata.txt)
SITE := $(CURDIR)/.venv/lib/python3.11/site-packages
# qgis_process.bin embeds /usr/bin/python3: hand it the venv's packages, a private profile and our plugin
QGIS_ENV := QT_QPA_PLATFORM=offscreen QGIS_CUSTOM_CONFIG_PATH=$(CURDIR)/build/qgis-profile \
            QGIS_PLUGINPATH=$(CURDIR)/build/plugins PYTHONPATH=$(SITE) XDG_RUNTIME_DIR=/tmp/runtime-$(shell id -u)
QGIS_PROCESS := $(QGIS_ENV) qgis_process.bin
SAMPLE := sample_data/mars_mola_shaded_relief.tif
MOLA_TRUTH := ../shared/validation-dems/mars_mola_topography_sample_grid.tif
DEMO_OUT := demo-output
USER_PLUGINS := $(HOME)/.local/share/QGIS/QGIS3/profiles/default/python/plugins
TRAIN_MINUTES ?= 85
TRAIN_THREADS ?= 2

.PHONY: setup setup-train demo test package install resources train-pix2pixcc train-mrfed validate bench clean

setup:
	scripts/setup.sh dev

setup-train:
	scripts/setup.sh train

resources: resources_rc.py
resources_rc.py: resources.qrc icons/icon.svg
	pyrcc5 -o $@ $<

demo: setup
	@mkdir -p $(DEMO_OUT) build/qgis-profile /tmp/runtime-$(shell id -u) && chmod 700 /tmp/runtime-$(shell id -u)
	$(QGIS_PROCESS) plugins 2>/dev/null | grep -q '^\* dtm_estimator' || $(QGIS_PROCESS) plugins enable dtm_estimator > /dev/null
	@# Sun azimuth 41°: the light's line the engine measures in the sample's shading (41° or 221°,
	@# engine/shading.py), on the side that is lit (the Tharsis volcanoes' east flanks are bright)
	@# MRFED: of the two shipped models the one closer to the true MOLA topography (README, Accuracy)
	$(QGIS_PROCESS) run dtmestimator:estimatedtm -- INPUT=$(SAMPLE) MODEL=mrfed DEVICE=auto SUN_AZIMUTH=41 \
	    OUTPUT=$(CURDIR)/$(DEMO_OUT)/mars_dtm.tif
	$(PY) scripts/preview.py $(SAMPLE) $(DEMO_OUT)/mars_dtm.tif $(DEMO_OUT)/mars_dtm_preview.png
	@# Scored against the sample's true MOLA topography (validation only; skipped without ../shared)
	if [ -f $(MOLA_TRUTH) ]; then $(PY) -m validation.demo_score $(DEMO_OUT)/mars_dtm.tif --truth $(MOLA_TRUTH) \
	    --image $(SAMPLE) --out $(DEMO_OUT)/demo_score.md --png $(DEMO_OUT)/demo_vs_truth.png; \
	else echo "demo score skipped: $(MOLA_TRUTH) is not there"; fi

test: setup
	@mkdir -p /tmp/runtime-$(shell id -u) && chmod 700 /tmp/runtime-$(shell id -u)
	XDG_RUNTIME_DIR=/tmp/runtime-$(shell id -u) QT_QPA_PLATFORM=offscreen $(PY) -m pytest tests -q -p no:cacheprovider

package: resources_rc.py
	rm -rf build/package dist && mkdir -p build/package dist
	git archive --format=tar --prefix=dtm_estimator/ HEAD | tar -x -C build/package
	cp resources_rc.py build/package/dtm_estimator/
	cd build/package && zip -qr9 ../../dist/dtm_estimator-$(VERSION).zip dtm_estimator
	@size=$$(stat -c %s dist/dtm_estimator-$(VERSION).zip); echo "dist/dtm_estimator-$(VERSION).zip: $$size bytes"; \
	    test $$size -le 26214400 || { echo "plugin zip over 25 MB"; exit 1; }

install: setup resources_rc.py
	mkdir -p $(USER_PLUGINS)
	ln -sfn $(CURDIR) $(USER_PLUGINS)/dtm_estimator
	@echo "Linked into $(USER_PLUGINS). Enable 'DTM Estimator' in QGIS's Plugin Manager."
	@/usr/bin/python3 -c "import onnxruntime" 2>/dev/null || { \
	    echo "onnxruntime is missing from QGIS's Python: installing it into the plugin's ext-libs/"; \
	    .venv/bin/pip install -q --no-deps --target ext-libs -c constraints.txt onnxruntime-gpu flatbuffers protobuf; }

train-pix2pixcc: setup-train
	$(PY) -m training.train --model pix2pixcc --minutes $(TRAIN_MINUTES) --threads $(TRAIN_THREADS) --seed 0 --out runs/pix2pixcc
	$(PY) -m training.export --checkpoint runs/pix2pixcc/best.pt --out models/pix2pixcc.onnx
	$(PY) -m training.tune_runtime models/pix2pixcc.onnx

train-mrfed: setup-train
	$(PY) -m training.train --model mrfed --minutes $(TRAIN_MINUTES) --threads $(TRAIN_THREADS) --seed 0 --out runs/mrfed
	$(PY) -m training.export --checkpoint runs/mrfed/best.pt --out models/mrfed.onnx
	$(PY) -m training.tune_runtime models/mrfed.onnx

validate: setup
	@# heights.py runs even when validate's verdict is FAIL (its exit status), and adds its table to the summary
	PYTHONPATH=build/plugins $(PY) -m validation.validate --models models/pix2pixcc.onnx models/mrfed.onnx \
	    --out validation/results; status=$$?; \
	PYTHONPATH=build/plugins $(PY) -m validation.heights --models models/pix2pixcc.onnx models/mrfed.onnx \
	    --out validation/results/heights.md --append-to validation/results/summary.md && exit $$status

bench: setup
	$(PY) -m bench.bench --out bench/results $(BENCH_ARGS)

clean:
	rm -rf build dist $(DEMO_OUT) resources_rc.py
