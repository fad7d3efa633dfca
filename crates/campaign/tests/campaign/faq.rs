use socialops_proto::campaign::v1::{Faq, Pattern, PutFaqRequest};
use socialops_proto::campaigns::v1::Kind;

use crate::support::*;

/// A matching direct message gets the answer once per conversation and question; variants of the
/// keyword match alike; a message matching nothing gets nothing.
#[tokio::test]
async fn faq_answers_once_per_conversation() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.writer()
        .await
        .put_faq(PutFaqRequest {
            faq: Some(Faq {
                id: "returns".into(),
                patterns: vec![Pattern {
                    keywords: vec!["退货".into()],
                }],
                answer: "七天无理由退货，请在订单页申请。".into(),
                updated_at: None,
            }),
        })
        .await
        .unwrap();
    app.direct_message("u1", "conv-1", "请问怎么退貨？").await;
    let answers = app
        .wait_sends("the answer", 1, |s| s.step_id == "faq:returns")
        .await;
    assert_eq!(answers[0].kind, Kind::Service as i32);
    assert_eq!(answers[0].conversation_id, "conv-1");
    app.direct_message("u1", "conv-1", "退货地址在哪里").await;
    app.direct_message("u2", "conv-2", "你们的面霜用起来怎么样")
        .await;
    app.direct_message("u3", "conv-3", "我想退货").await;
    app.wait_sends("the second conversation's answer", 2, |s| {
        s.step_id == "faq:returns"
    })
    .await;
    app.settle().await;
    let answers: Vec<String> = app
        .published()
        .iter()
        .map(|s| s.conversation_id.clone())
        .collect();
    assert_eq!(answers, ["conv-1", "conv-3"]);
}
