"""Paid pinned likes (置顶赞): a viewer pays a small amount through WeChat Pay to pin a like
(with an optional message) at the top of a content item's comments; the creator earns most of
it and is told at once. Modelled on YouTube Super Chat, Bilibili 醒目留言 and Twitch Hype Chat."""
