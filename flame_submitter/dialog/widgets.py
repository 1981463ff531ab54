"""Parameter widgets generated from a workflow manifest, one per parameter.

Each field reports its value *as typed* (``changed(key, raw)``): a spin box holding ``99`` where 31 is the
maximum reports ``"99"`` instead of silently refusing the keystroke, so that the dialog can say why
Submit is disabled. Leaving the field puts the nearest allowed value back. The kinds come from
:func:`flame_submitter.dialog.model.widget_kind`:

=========  ======================================================
kind       widget
=========  ======================================================
text       QLineEdit
prompt     QPlainTextEdit, a few lines high, wrapped
file       QLineEdit and a Browse… button
int        QSpinBox with the manifest's min, max and step
seed       the int spin box and a Randomise button
float      QDoubleSpinBox with min, max, step and enough decimals
choice     QComboBox of the manifest's choices
bool       QCheckBox
=========  ======================================================
"""

from __future__ import annotations

import logging
import os
import random
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional

from farm_plugin.workflow.package import Parameter, WorkflowPackage
from flame_submitter.dialog.model import FileSpec, describe_allowed, file_spec, widget_kind
from flame_submitter.dialog.qt_compat import QtCore, QtGui, QtWidgets, Signal

logger = logging.getLogger(__name__)

INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
FLOAT_LIMIT = 1e9
PROMPT_LINES = 4
LUT_FILTER = "LUT files (*.cube *.3dl *.csp *.spi1d *.spi3d *.lut);;All files (*)"


def _repolish(widget: QtWidgets.QWidget) -> None:
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def set_invalid(widget: QtWidgets.QWidget, invalid: bool) -> None:
    """Mark a field whose value is not allowed, for the dialog's ``[invalid="true"]`` style rules."""
    if bool(widget.property("invalid")) != invalid:
        widget.setProperty("invalid", invalid)
        _repolish(widget)


class _NoWheelMixin:
    """Scrolling the form must not change a value the mouse happens to pass over: the wheel only acts on
    a field that has the keyboard focus."""

    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:  # noqa: N802 (Qt's name)
        # A mixin: hasFocus and wheelEvent are the Qt widget's that it is mixed into (after it in the bases).
        if self.hasFocus():  # type: ignore[attr-defined]  # the widget's method
            super().wheelEvent(event)  # type: ignore[misc]  # the widget's method
        else:
            event.ignore()


def _acceptable_as_intermediate(result: Any, text: str, convert: Any) -> Any:
    """Qt refuses keystrokes that make a number out of range; keep them (Intermediate) so that the dialog
    can show why the value is not allowed."""
    state = result[0] if isinstance(result, tuple) else result
    if state != QtGui.QValidator.State.Invalid:
        return result
    try:
        convert(text.strip())
    except ValueError:
        return result
    position = result[2] if isinstance(result, tuple) else len(text)
    return (QtGui.QValidator.State.Intermediate, text, position)


def _nearest_text(spin: QtWidgets.QAbstractSpinBox, text: str, convert: Any) -> Optional[str]:
    """The nearest allowed value to the number in ``text``, as the spin box writes it (None: no number)."""
    core = text.strip()
    if spin.prefix() and core.startswith(spin.prefix().strip()):
        core = core[len(spin.prefix().strip()):]
    if spin.suffix() and core.endswith(spin.suffix().strip()):
        core = core[:-len(spin.suffix().strip())]
    try:
        number = convert(core.strip())
    except ValueError:
        return None
    nearest = min(max(number, spin.minimum()), spin.maximum())
    return spin.prefix() + spin.textFromValue(nearest) + spin.suffix()


class _NearestOnCommitMixin:
    """Put the nearest allowed value in the field itself before Qt reads it (Return, Enter, leaving the
    field). PySide6 takes it from ``fixup``'s return value too; PySide2 drops what a Python ``fixup``
    returns, so Qt would put back the minimum there: doing it here works with both bindings."""

    convert: Any = int

    def _put_nearest(self) -> None:
        # A mixin: lineEdit, validate and the event handlers are the Qt spin box's that it is mixed into.
        line = self.lineEdit()  # type: ignore[attr-defined]  # the spin box's method
        text = line.text()
        result = self.validate(text, len(text))  # type: ignore[attr-defined]  # the spin box's method
        state = result[0] if isinstance(result, tuple) else result
        if state != QtGui.QValidator.State.Acceptable:
            nearest = _nearest_text(self, text, self.convert)
            if nearest is not None and nearest != text:
                line.setText(nearest)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        if event.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
            self._put_nearest()
        super().keyPressEvent(event)  # type: ignore[misc]  # the spin box's method

    def focusOutEvent(self, event: QtGui.QFocusEvent) -> None:  # noqa: N802 (Qt's name)
        self._put_nearest()
        super().focusOutEvent(event)  # type: ignore[misc]  # the spin box's method


class LenientSpinBox(_NearestOnCommitMixin, _NoWheelMixin, QtWidgets.QSpinBox):
    """A QSpinBox that keeps an out-of-range number as typed, and puts the nearest allowed value back when
    the artist leaves the field or presses Return (Qt alone would put back the minimum)."""

    convert = int

    def validate(self, text: str, position: int) -> Any:
        return _acceptable_as_intermediate(super().validate(text, position), text, int)

    def fixup(self, text: str) -> str:
        return _nearest_text(self, text, int) or super().fixup(text) or text


class LenientDoubleSpinBox(_NearestOnCommitMixin, _NoWheelMixin, QtWidgets.QDoubleSpinBox):
    """The QDoubleSpinBox counterpart of LenientSpinBox."""

    convert = float

    def validate(self, text: str, position: int) -> Any:
        return _acceptable_as_intermediate(super().validate(text, position), text, float)

    def fixup(self, text: str) -> str:
        return _nearest_text(self, text, float) or super().fixup(text) or text


class QuietComboBox(_NoWheelMixin, QtWidgets.QComboBox):
    pass


def _decimals(parameter: Parameter) -> int:
    places = 1
    for number in (parameter.step, parameter.min, parameter.max, parameter.default):
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            exponent = Decimal(repr(float(number))).normalize().as_tuple().exponent
            if isinstance(exponent, int):
                places = max(places, -exponent)
    return min(places, 6)


class ParameterField(QtWidgets.QWidget):
    """One parameter's editor. ``changed(key, raw)`` fires on every edit with the value as typed."""

    changed = Signal(str, object)
    kind = "text"

    def __init__(self, package: WorkflowPackage, parameter: Parameter,
                 parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.package = package
        self.parameter = parameter
        self.setObjectName(f"param_{parameter.key}")
        self._layout = QtWidgets.QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.editor: QtWidgets.QWidget = self._build()
        self.editor.setToolTip(self.tooltip())
        self._updating = False

    def _build(self) -> QtWidgets.QWidget:
        raise NotImplementedError

    def tooltip(self) -> str:
        parts = [self.parameter.description] if self.parameter.description else []
        if self.parameter.type in ("int", "float"):
            parts.append(f"Allowed: {describe_allowed(self.parameter)}.")
        parts.append(f"Default: {self.parameter.default}")
        return "\n".join(parts)

    def raw_value(self) -> Any:
        raise NotImplementedError

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def set_raw_value(self, value: Any) -> None:
        """Show ``value`` without reporting it back as an edit."""
        self._updating = True
        try:
            self._show(value)
        finally:
            self._updating = False

    def set_problem(self, problem: Optional[str]) -> None:
        set_invalid(self.editor, bool(problem))
        self.editor.setToolTip(f"{problem}\n\n{self.tooltip()}" if problem else self.tooltip())

    def _emit(self, *_: Any) -> None:
        if not self._updating:
            self.changed.emit(self.parameter.key, self.raw_value())


class TextField(ParameterField):
    kind = "text"

    def _build(self) -> QtWidgets.QWidget:
        edit = QtWidgets.QLineEdit()
        edit.textChanged.connect(self._emit)
        self._layout.addWidget(edit)
        return edit

    def raw_value(self) -> Any:
        return self.editor.text()

    def _show(self, value: Any) -> None:
        self.editor.setText("" if value is None else str(value))


class PromptField(ParameterField):
    kind = "prompt"

    def _build(self) -> QtWidgets.QWidget:
        edit = QtWidgets.QPlainTextEdit()
        edit.setTabChangesFocus(True)
        edit.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        line = edit.fontMetrics().lineSpacing()
        edit.setFixedHeight(line * PROMPT_LINES + 14)
        edit.textChanged.connect(self._emit)
        self._layout.addWidget(edit)
        return edit

    def raw_value(self) -> Any:
        return self.editor.toPlainText()

    def _show(self, value: Any) -> None:
        self.editor.setPlainText("" if value is None else str(value))


class FileField(ParameterField):
    """A line edit and a Browse… button. For a file of a ComfyUI models folder only its name is kept."""

    kind = "file"

    def _build(self) -> QtWidgets.QWidget:
        self.spec: FileSpec = file_spec(self.package, self.parameter)
        edit = QtWidgets.QLineEdit()
        edit.setPlaceholderText("file name" if self.spec.name_only else "/path/on/shared/storage")
        edit.textChanged.connect(self._emit)
        self.browse_button = QtWidgets.QPushButton("Browse…")
        self.browse_button.setObjectName("BrowseButton")
        self.browse_button.setAutoDefault(False)
        self.browse_button.clicked.connect(self.browse)
        self._layout.addWidget(edit, 1)
        self._layout.addWidget(self.browse_button)
        return edit

    def tooltip(self) -> str:
        return f"{super().tooltip()}\n{self.spec.hint()}"

    def browse(self) -> None:
        current = self.editor.text().strip()
        start = os.path.dirname(current) if os.path.isabs(current) else os.path.expanduser("~")
        is_lut = "lut" in (self.parameter.key + " " + self.parameter.label).lower()
        title = f"Choose: {self.parameter.label}"
        chosen, _ = QtWidgets.QFileDialog.getOpenFileName(self, title, start, LUT_FILTER if is_lut else "All files (*)")
        if chosen:
            self.editor.setText(os.path.basename(chosen) if self.spec.name_only else chosen)

    def raw_value(self) -> Any:
        return self.editor.text()

    def _show(self, value: Any) -> None:
        self.editor.setText("" if value is None else str(value))


class _NumberField(ParameterField):
    """A spin box that keeps what the artist types (even out of range, so the reason can be shown)."""

    convert: Any = int

    def _spin(self) -> QtWidgets.QAbstractSpinBox:
        raise NotImplementedError

    def _build(self) -> QtWidgets.QWidget:
        spin = self._spin()
        spin.setCorrectionMode(QtWidgets.QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        spin.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        spin.setMinimumWidth(110)
        spin.lineEdit().textChanged.connect(self._emit)  # typing, including values out of range
        spin.valueChanged.connect(self._emit)  # arrows, wheel, setValue: Qt sets the text with signals blocked
        self._layout.addWidget(spin)
        self._layout.addStretch(1)
        return spin

    def raw_value(self) -> Any:
        return self.editor.cleanText()

    def _show(self, value: Any) -> None:
        try:
            self.editor.setValue(self.convert(value))
        except (TypeError, ValueError):
            self.editor.lineEdit().setText(str(value))


class IntField(_NumberField):
    kind = "int"
    convert = int

    def _spin(self) -> QtWidgets.QAbstractSpinBox:
        spin = LenientSpinBox()
        low = int(self.parameter.min) if self.parameter.min is not None else -INT_LIMIT
        high = int(self.parameter.max) if self.parameter.max is not None else INT_LIMIT
        spin.setRange(max(low, -INT_LIMIT), min(high, INT_LIMIT))
        spin.setSingleStep(int(self.parameter.step or 1))
        return spin


class SeedField(IntField):
    """A seed: the int spin box and a Randomise button."""

    kind = "seed"

    def _build(self) -> QtWidgets.QWidget:
        spin = super()._build()
        spin.setMinimumWidth(130)
        self._random = random.Random()
        self.randomise_button = QtWidgets.QPushButton("Randomise")
        self.randomise_button.setObjectName("RandomiseButton")
        self.randomise_button.setAutoDefault(False)
        self.randomise_button.setToolTip("Pick a new random seed: same settings, a different result.")
        self.randomise_button.clicked.connect(self.randomise)
        self._layout.insertWidget(1, self.randomise_button)
        return spin

    def randomise(self) -> None:
        spin = self.editor
        value = spin.value()
        while value == spin.value() and spin.minimum() < spin.maximum():
            value = self._random.randint(spin.minimum(), spin.maximum())
        spin.setValue(value)


class FloatField(_NumberField):
    kind = "float"
    convert = float

    def _spin(self) -> QtWidgets.QAbstractSpinBox:
        spin = LenientDoubleSpinBox()
        spin.setLocale(QtCore.QLocale.c())  # "0.5", as the manifests and Flame write numbers
        spin.setDecimals(_decimals(self.parameter))
        low = self.parameter.min if self.parameter.min is not None else -FLOAT_LIMIT
        high = self.parameter.max if self.parameter.max is not None else FLOAT_LIMIT
        spin.setRange(float(low), float(high))
        spin.setSingleStep(float(self.parameter.step or 0.1))
        return spin


class ChoiceField(ParameterField):
    kind = "choice"

    def _build(self) -> QtWidgets.QWidget:
        combo = QuietComboBox()
        combo.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        for choice in self.parameter.choices:
            combo.addItem(str(choice))
        combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.currentIndexChanged.connect(self._emit)
        self._layout.addWidget(combo)
        self._layout.addStretch(1)
        return combo

    def raw_value(self) -> Any:
        index = self.editor.currentIndex()
        return self.parameter.choices[index] if 0 <= index < len(self.parameter.choices) else None

    def _show(self, value: Any) -> None:
        for index, choice in enumerate(self.parameter.choices):
            if choice == value or str(choice) == str(value):
                self.editor.setCurrentIndex(index)
                return


class BoolField(ParameterField):
    kind = "bool"

    def _build(self) -> QtWidgets.QWidget:
        box = QtWidgets.QCheckBox()
        box.toggled.connect(self._emit)
        self._layout.addWidget(box)
        self._layout.addStretch(1)
        return box

    def raw_value(self) -> Any:
        return self.editor.isChecked()

    def _show(self, value: Any) -> None:
        self.editor.setChecked(bool(value))


FIELD_CLASSES = {
    "text": TextField,
    "prompt": PromptField,
    "file": FileField,
    "int": IntField,
    "seed": SeedField,
    "float": FloatField,
    "choice": ChoiceField,
    "bool": BoolField,
}


def make_field(package: WorkflowPackage, parameter: Parameter,
               parent: Optional[QtWidgets.QWidget] = None) -> ParameterField:
    """The editor for one parameter of ``package``."""
    return FIELD_CLASSES[widget_kind(parameter)](package, parameter, parent)


class ParameterForm(QtWidgets.QWidget):
    """The form of a workflow's parameters: the label on the left, aligned with the first line of its
    editor, and the editor with a short caption (description and allowed values) on the right.

    ``changed(key, raw)`` relays every field's edits.
    """

    changed = Signal(str, object)

    def __init__(self, package: WorkflowPackage, parent: Optional[QtWidgets.QWidget] = None) -> None:
        super().__init__(parent)
        self.package = package
        self.setObjectName("ParameterForm")
        self.fields: Dict[str, ParameterField] = {}
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(12)
        grid.setColumnStretch(1, 1)
        if not package.parameters:
            empty = QtWidgets.QLabel("This workflow has no settings: it runs the same way on every clip.")
            empty.setObjectName("Caption")
            empty.setWordWrap(True)
            grid.addWidget(empty, 0, 0, 1, 2)
            return
        top_right = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignTop
        for row, parameter in enumerate(package.parameters):
            field = make_field(package, parameter, self)
            field.changed.connect(self.changed)
            self.fields[parameter.key] = field
            label = QtWidgets.QLabel(parameter.label)
            label.setObjectName("FieldLabel")
            label.setWordWrap(True)
            label.setAlignment(top_right)
            label.setMinimumWidth(130)
            label.setMaximumWidth(190)
            label.setBuddy(field.editor)
            label.setToolTip(field.tooltip())
            grid.addWidget(label, row, 0, top_right)
            grid.addWidget(self._with_caption(field), row, 1, QtCore.Qt.AlignmentFlag.AlignTop)

    def _with_caption(self, field: ParameterField) -> QtWidgets.QWidget:
        caption_text = self._caption(field)
        if not caption_text:
            return field
        box = QtWidgets.QWidget(self)
        column = QtWidgets.QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(field)
        caption = QtWidgets.QLabel(caption_text)
        caption.setObjectName("Caption")
        caption.setWordWrap(True)
        column.addWidget(caption)
        return box

    @staticmethod
    def _caption(field: ParameterField) -> str:
        parameter = field.parameter
        parts = [parameter.description.strip()] if parameter.description else []
        if parameter.type in ("int", "float") and field.kind != "seed":
            parts.append(f"({describe_allowed(parameter).capitalize()}.)" if not parts else
                         f"({describe_allowed(parameter)})")
        if field.kind == "file":
            parts.append(field.spec.hint())
        return " ".join(parts)

    def set_values(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if key in self.fields:
                self.fields[key].set_raw_value(value)

    def set_problems(self, problems: Mapping[str, str]) -> None:
        for key, field in self.fields.items():
            field.set_problem(problems.get(key))
