//! ksqlDB spellings DataFusion does not know, rewritten in the parsed statement:
//! `WINDOWSTART`/`WINDOWEND` become the window columns, `COUNT_IF(c)` becomes
//! `COUNT(*) FILTER (WHERE c)`, and `/` divides as floating point so that
//! `COUNT_IF(...) / COUNT(*)` is the ratio a user means (0.25, not 0).

use std::ops::ControlFlow;

use datafusion_sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, ExactNumberInfo, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, ObjectNamePart, Statement, Value, visit_expressions_mut,
};

use super::table::{WINDOW_END, WINDOW_START};

/// Applies the rewrites to `statement` in place.
pub fn rewrite_statement(statement: &mut Statement) -> Result<(), String> {
    let flow = visit_expressions_mut(statement, |expr| {
        match expr {
            Expr::Identifier(ident) => rename_window_column(ident),
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    rename_window_column(last);
                }
            }
            Expr::Function(function) if is_named(&function.name.0, "count_if") => {
                let FunctionArguments::List(list) = &mut function.args else {
                    return ControlFlow::Break("COUNT_IF takes one condition".to_owned());
                };
                let [FunctionArg::Unnamed(FunctionArgExpr::Expr(condition))] = list.args.as_slice()
                else {
                    return ControlFlow::Break(
                        "COUNT_IF takes exactly one condition, e.g. COUNT_IF(status = 'failure')"
                            .to_owned(),
                    );
                };
                if function.filter.is_some() {
                    return ControlFlow::Break("COUNT_IF cannot have a FILTER clause".to_owned());
                }
                function.filter = Some(Box::new(condition.clone()));
                list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)];
                function.name.0 = vec![ObjectNamePart::Identifier(Ident::new("count"))];
            }
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Divide,
                right,
            } => {
                for side in [left, right] {
                    let inner = std::mem::replace(side.as_mut(), Expr::value(Value::Null));
                    **side = Expr::Cast {
                        kind: CastKind::Cast,
                        expr: Box::new(inner),
                        data_type: DataType::Double(ExactNumberInfo::None),
                        array: false,
                        format: None,
                    };
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(reason) => Err(reason),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn rename_window_column(ident: &mut Ident) {
    if ident.quote_style.is_none() {
        if ident.value.eq_ignore_ascii_case("windowstart") {
            *ident = Ident::new(WINDOW_START);
        } else if ident.value.eq_ignore_ascii_case("windowend") {
            *ident = Ident::new(WINDOW_END);
        }
    }
}

fn is_named(parts: &[ObjectNamePart], name: &str) -> bool {
    matches!(parts, [ObjectNamePart::Identifier(ident)] if ident.value.eq_ignore_ascii_case(name))
}
