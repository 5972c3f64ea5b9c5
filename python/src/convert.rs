//! JSON values to Python objects and back (through pythonize), leniently where an agent's
//! output may hold anything.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Map, Value};

/// `value` as Python objects (dicts, lists, str, int, float, bool, None).
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|err| PyValueError::new_err(err.to_string()))
}

/// A JSON-like Python object as a value; a `TypeError` names what is not JSON-like.
pub fn from_py(object: &Bound<'_, PyAny>) -> PyResult<Value> {
    pythonize::depythonize(object).map_err(|err| PyTypeError::new_err(err.to_string()))
}

/// [`from_py`], or for objects that are not JSON-like (an agent's dataclass, a datetime), the
/// value `json.dumps(object, default=str)` makes of it.
pub fn from_py_lenient(object: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(value) = from_py(object) {
        return Ok(value);
    }
    let py = object.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", py.get_type::<pyo3::types::PyString>())?;
    let text: String = py
        .import("json")?
        .call_method("dumps", (object,), Some(&kwargs))?
        .extract()?;
    serde_json::from_str(&text).map_err(|err| PyValueError::new_err(err.to_string()))
}

/// A dict argument (or `None`) as a JSON object.
pub fn object_from_py(object: Option<&Bound<'_, PyAny>>) -> PyResult<Map<String, Value>> {
    match object.map(from_py_lenient).transpose()? {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(PyTypeError::new_err(format!(
            "expected a dict, got {other}"
        ))),
    }
}
