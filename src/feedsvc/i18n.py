"""Vietnamese and English strings of the pages and emails, and choosing between them.

Two languages do not need gettext catalogues and a compile step: the strings live
here, keyed by their English text, and a test checks that every key has both.
Dates and numbers are Babel's business (``format_date`` with the locale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedsvc.config import Config

LOCALES = ("vi", "en")

VI: dict[str, str] = {
    "Categories": "Chuyên mục",
    "Feeds": "Nguồn tin",
    "All categories": "Tất cả chuyên mục",
    "Every story from every source, newest first.": "Mọi tin từ mọi nguồn, mới nhất trước.",
    "Subscribe in your feed reader:": "Theo dõi bằng trình đọc tin:",
    "Add any of these addresses to Feedly, NetNewsWire, Thunderbird or another feed reader.": (
        "Thêm một trong các địa chỉ này vào Feedly, NetNewsWire, Thunderbird "
        "hoặc trình đọc tin khác."
    ),
    "All feeds as OPML": "Tất cả nguồn tin dạng OPML",
    "Page not found": "Không tìm thấy trang",
    "There is no feed at this address.": "Không có nguồn tin nào ở địa chỉ này.",
    "These are the feeds we publish:": "Các nguồn tin chúng tôi cung cấp:",
    "Back to the home page": "Về trang chủ",
    "Language": "Ngôn ngữ",
    # web: subscribe, confirm, preferences, unsubscribe (web/subscribe.py, templates/web/)
    "Get the newsletter by email": "Nhận bản tin qua email",
    "Choose your categories and how often; we send a link to confirm first.": (
        "Chọn chuyên mục và tần suất; trước hết chúng tôi sẽ gửi một liên kết để bạn xác nhận."
    ),
    "Email address": "Địa chỉ email",
    "Frequency": "Tần suất",
    "Language of the emails": "Ngôn ngữ của thư",
    "Leave this field empty": "Hãy để trống ô này",
    "Subscribe": "Đăng ký",
    "Enter a valid email address, such as ten@example.com.": (
        "Hãy nhập một địa chỉ email hợp lệ, ví dụ ten@example.com."
    ),
    "Choose at least one category.": "Hãy chọn ít nhất một chuyên mục.",
    "Choose how often you want the newsletter.": "Hãy chọn tần suất nhận bản tin.",
    "Choose a language.": "Hãy chọn một ngôn ngữ.",
    # topics followed by email (newsletter/topics.py, web/_fields.html, email/digest.*)
    "Topics to follow (optional)": "Chủ đề theo dõi (không bắt buộc)",
    "One topic a line, a word or a phrase, up to 10; tones do not matter: "
    "“da nang” also finds “Đà Nẵng”. Stories about them come first in each email, "
    "from every category.": (
        "Mỗi dòng một chủ đề, là một từ hoặc cụm từ, tối đa 10; gõ có dấu hay không đều "
        "được: “da nang” cũng tìm thấy “Đà Nẵng”. Tin về các chủ đề này đứng đầu mỗi "
        "bản tin, lấy từ mọi chuyên mục."
    ),
    "Follow at most 10 topics.": "Chỉ theo dõi được tối đa 10 chủ đề.",
    "A topic can be at most 60 characters long.": "Mỗi chủ đề dài tối đa 60 ký tự.",
    "A topic needs at least one letter or digit.": "Mỗi chủ đề cần có ít nhất một chữ hoặc số.",
    "Your topics": "Chủ đề bạn theo dõi",
    "Check your email": "Hãy kiểm tra hộp thư",
    "If this address is not subscribed yet, we have sent it an email with a confirmation link.": (
        "Nếu địa chỉ này chưa đăng ký, chúng tôi vừa gửi tới đó một thư có liên kết xác nhận."
    ),
    "Open the link within 7 days to start receiving the newsletter.": (
        "Hãy mở liên kết trong vòng 7 ngày để bắt đầu nhận bản tin."
    ),
    "No email after a few minutes? Look in the spam or promotions folder.": (
        "Sau vài phút vẫn chưa thấy thư? Hãy xem trong thư mục Spam hoặc Quảng cáo."
    ),
    "This address has letters with diacritics before the @. Only mail servers with "
    "SMTPUTF8 can deliver to it, and many cannot: if no email arrives, use another address.": (
        "Địa chỉ này có chữ có dấu ở trước @. Chỉ máy chủ thư hỗ trợ SMTPUTF8 mới gửi tới "
        "được, và nhiều máy chủ không hỗ trợ: nếu không nhận được thư, hãy dùng địa chỉ khác."
    ),
    "Confirm your subscription": "Xác nhận đăng ký của bạn",
    "{email} will receive the newsletter.": "{email} sẽ nhận bản tin.",
    "If you did not ask for this, close this page: you will receive nothing.": (
        "Nếu bạn không yêu cầu, hãy đóng trang này: bạn sẽ không nhận được thư nào."
    ),
    "You are subscribed": "Bạn đã đăng ký thành công",
    "Thank you for confirming {email}.": "Cảm ơn bạn đã xác nhận địa chỉ {email}.",
    "Every newsletter has a link to unsubscribe with one click.": (
        "Mỗi bản tin đều có liên kết để hủy đăng ký chỉ với một lần bấm."
    ),
    "Newsletter preferences": "Tùy chọn nhận bản tin",
    "For {email}": "Cho địa chỉ {email}",
    "Your preferences are saved.": "Đã lưu tùy chọn của bạn.",
    "This address is not receiving the newsletter at the moment.": (
        "Địa chỉ này hiện không nhận bản tin."
    ),
    "Save changes": "Lưu thay đổi",
    "Unsubscribe from the newsletter?": "Hủy đăng ký nhận bản tin?",
    "{email} will receive no more newsletters from us.": (
        "{email} sẽ không nhận thêm bản tin nào từ chúng tôi."
    ),
    "Too many emails?": "Nhận quá nhiều thư?",
    "You are unsubscribed": "Bạn đã hủy đăng ký",
    "You will receive no more newsletters from us.": (
        "Bạn sẽ không nhận thêm bản tin nào từ chúng tôi."
    ),
    "Changed your mind? You can subscribe again on the home page.": (
        "Nếu đổi ý, bạn có thể đăng ký lại ở trang chủ."
    ),
    "This link is invalid or has expired": "Liên kết không hợp lệ hoặc đã hết hạn",
    "A confirmation link works for 7 days. Subscribe again and we will send a new one.": (
        "Liên kết xác nhận chỉ dùng được trong 7 ngày. Hãy đăng ký lại, "
        "chúng tôi sẽ gửi liên kết mới."
    ),
    "Part of the link may have been lost when it was copied. "
    "Open it again from the email, or subscribe again.": (
        "Có thể một phần liên kết đã bị mất khi sao chép. "
        "Hãy mở lại liên kết từ email, hoặc đăng ký lại."
    ),
    "Subscribe again": "Đăng ký lại",
    "The form could not be sent": "Không gửi được biểu mẫu",
    "The form was open too long, or the browser blocked its cookie. "
    "Go back, reload the page and try again.": (
        "Biểu mẫu đã mở quá lâu, hoặc trình duyệt đã chặn cookie của nó. "
        "Hãy quay lại, tải lại trang rồi thử lần nữa."
    ),
    "Go back": "Quay lại",
    "Too many attempts": "Quá nhiều lần thử",
    "We received many sign-ups from here in a short time. Please try again in an hour.": (
        "Chúng tôi nhận được nhiều lượt đăng ký từ đây trong thời gian ngắn. "
        "Vui lòng thử lại sau một giờ."
    ),
    # web: the operator's status page (web/status.py, templates/web/status.html)
    "Service status": "Tình trạng dịch vụ",
    "Scheduler": "Bộ lập lịch",
    "running": "đang chạy",
    "not running": "không chạy",
    "Last poll": "Lần lấy tin gần nhất",
    "never": "chưa có",
    "Times are in {timezone}.": "Giờ theo múi giờ {timezone}.",
    "The status page is on, but {variable} is not set: "
    "set it in the service's environment and restart.": (
        "Trang tình trạng đã được bật nhưng biến môi trường {variable} chưa được đặt: "
        "hãy đặt biến này cho dịch vụ rồi khởi động lại."
    ),
    "This page needs the status token.": "Trang này cần mã truy cập trang tình trạng.",
    "Status token": "Mã truy cập",
    "Too many wrong tokens from here. Try again in {minutes} minutes.": (
        "Quá nhiều lần nhập sai mã từ địa chỉ này. Hãy thử lại sau {minutes} phút."
    ),
    "Health checks": "Kiểm tra hoạt động",
    "Check": "Hạng mục",
    "Details": "Chi tiết",
    "Database": "Cơ sở dữ liệu",
    "Disk space": "Dung lượng đĩa",
    "Not OK": "Có vấn đề",
    # web: the page of a request refused on a full disk (web/disk.py)
    "Temporarily unavailable": "Tạm thời gián đoạn",
    "We cannot save your request right now, and nothing has been changed.": (
        "Hiện chúng tôi chưa thể lưu yêu cầu của bạn, và chưa có gì thay đổi."
    ),
    "Please try again in a few minutes.": "Vui lòng thử lại sau vài phút.",
    "Open": "Mở",
    "Sources": "Nguồn lấy tin",
    "Source": "Nguồn",
    "Status": "Trạng thái",
    "Address": "Địa chỉ",
    "Last error": "Lỗi gần nhất",
    "Errors": "Số lỗi",
    "Last polled": "Lấy tin lần cuối",
    "Next poll": "Lấy tin lần tới",
    "Entries": "Số tin",
    "removed from config.yaml": "đã bỏ khỏi config.yaml",
    "Warning": "Cảnh báo",
    "No sources.": "Chưa có nguồn nào.",
    "Deliveries": "Lượt gửi bản tin",
    "State": "Trạng thái",
    "Count": "Số lượng",
    "New": "Mới",
    "OK": "Bình thường",
    "Error": "Lỗi",
    "Backing off": "Tạm giãn lịch",
    "Retired (410 Gone)": "Đã ngừng (410 Gone)",
    "Waiting": "Đang chờ",
    "Sending": "Đang gửi",
    "Sent": "Đã gửi",
    "Failed": "Thất bại",
    "Unknown outcome": "Không rõ kết quả",
    "Nothing new": "Không có tin mới",
    "Bounced later": "Bị trả lại sau khi gửi",
    # email: digest (newsletter/render.py, templates/email/)
    "{n} new story": "{n} tin mới",
    "{n} new stories": "{n} tin mới",
    "… and {n} more": "… và {n} tin khác",
    "View in your browser": "Xem trong trình duyệt",
    "daily": "hằng ngày",
    "weekly": "hằng tuần",
    "monthly": "hằng tháng",
    "You get the {schedule} digest of {categories} because you subscribed at {site}.": (
        "Bạn nhận bản tin {schedule} về {categories} vì đã đăng ký tại {site}."
    ),
    "You get news of {categories} because you subscribed at {site}.": (
        "Bạn nhận tin về {categories} vì đã đăng ký tại {site}."
    ),
    "This email was sent to {email}.": "Thư này được gửi tới {email}.",
    "Change your preferences": "Thay đổi tùy chọn nhận tin",
    "Unsubscribe": "Hủy đăng ký",
    # web and email: editions and the archive (newsletter/archive.py, web/digests.py)
    "{schedule} newsletter": "bản tin {schedule}",
    "Past editions": "Các số đã gửi",
    "Past editions of the newsletter": "Các số bản tin đã gửi",
    "Every newsletter we have sent, newest first.": "Mọi bản tin đã gửi, mới nhất trước.",
    "stories": "tin",
    "No newsletter has been sent yet.": "Chưa có bản tin nào được gửi.",
    "Older editions": "Các số cũ hơn",
    "This was a test email": "Đây là thư thử",
    "An editor sent it to check the newsletter before it goes out. "
    "Its links lead here: there is no subscription to change.": (
        "Biên tập viên gửi thư này để kiểm tra bản tin trước khi phát hành. "
        "Các liên kết trong thư dẫn tới đây: không có đăng ký nào để thay đổi."
    ),
    # email: alerts to the operators (newsletter/alerts.py, templates/email/alert.txt)
    "[feedsvc] Source {name} is failing": "[feedsvc] Nguồn tin {name} bị lỗi",
    "[feedsvc] Source {name} is gone (410)": "[feedsvc] Nguồn tin {name} đã ngừng hoạt động (410)",
    "[feedsvc] Source {name} has stopped updating": "[feedsvc] Nguồn tin {name} ngừng cập nhật",
    "[feedsvc] Source {name} works again": "[feedsvc] Nguồn tin {name} đã hoạt động trở lại",
    "Source {name} has been failing since {since}.": "Nguồn tin {name} bị lỗi từ {since}.",
    "Source {name} answered 410 Gone: feedsvc no longer polls it.": (
        "Nguồn tin {name} trả lời 410 Gone: feedsvc không lấy tin từ nguồn này nữa."
    ),
    "Source {name} has published nothing new since {since}, far longer than usual.": (
        "Nguồn tin {name} không có tin mới từ {since}, lâu hơn nhiều so với thường lệ."
    ),
    "Source {name} works again (the problem began {since}).": (
        "Nguồn tin {name} đã hoạt động trở lại (sự cố bắt đầu từ {since})."
    ),
    "feedsvc keeps trying, less often while it fails. "
    "Check the address and the publisher's site.": (
        "feedsvc vẫn tiếp tục thử lại, thưa dần khi nguồn còn lỗi. "
        "Hãy kiểm tra địa chỉ và trang web của nơi đăng tin."
    ),
    "feedsvc will not poll it again until its URL changes in config.yaml "
    "(or feedsvc poll --force).": (
        "feedsvc sẽ không lấy tin từ nguồn này nữa cho đến khi địa chỉ của nó "
        "trong config.yaml thay đổi (hoặc chạy feedsvc poll --force)."
    ),
    "Its polls work, but nothing new has come for far longer than its usual rhythm. "
    "The feed may have moved or stopped.": (
        "Việc lấy tin vẫn bình thường, nhưng đã lâu hơn nhiều so với nhịp thường lệ "
        "mà không có tin mới. Có thể nguồn tin đã chuyển địa chỉ hoặc ngừng cập nhật."
    ),
    "Nothing to do.": "Không cần làm gì thêm.",
    "Since": "Từ lúc",
    "Failed polls in a row": "Số lần lấy tin lỗi liên tiếp",
    "Console": "Trang quản trị",
    "Open incidents": "Sự cố đang mở",
    "No open incidents.": "Không có sự cố nào.",
    "Problem": "Vấn đề",
    "Failing": "Lỗi kéo dài",
    "Gone (410)": "Đã ngừng (410)",
    "Quiet": "Ngừng cập nhật",
    "Alert sent": "Đã gửi cảnh báo",
    "yes": "có",
    "not yet": "chưa",
    # email: double opt-in confirmation
    "Confirm your subscription to {name}": "Xác nhận đăng ký nhận tin từ {name}",
    "Please confirm your subscription": "Vui lòng xác nhận đăng ký",
    "Someone, probably you, asked to receive {name} at {email}.": (
        "Ai đó, có lẽ là bạn, đã yêu cầu nhận {name} tại địa chỉ {email}."
    ),
    "Categories: {categories}": "Chuyên mục: {categories}",
    "Frequency: {schedule}": "Tần suất: {schedule}",
    "Confirm subscription": "Xác nhận đăng ký",
    "If the button does not work, open this address in your browser:": (
        "Nếu nút không hoạt động, hãy mở địa chỉ này trong trình duyệt:"
    ),
    "If you did not ask for this, ignore this email: you will receive nothing more.": (
        "Nếu bạn không yêu cầu, hãy bỏ qua thư này: bạn sẽ không nhận thêm thư nào."
    ),
}

# The operator console (web/admin, templates/web/admin/).
VI |= {
    "Operator console": "Bảng điều hành",
    "Password": "Mật khẩu",
    "Sign in": "Đăng nhập",
    "Sign out": "Đăng xuất",
    "That password is not right.": "Mật khẩu không đúng.",
    "Too many wrong passwords were tried. Wait a quarter of an hour, then sign in again.": (
        "Đã thử sai mật khẩu quá nhiều lần. Hãy đợi mười lăm phút rồi đăng nhập lại."
    ),
    "The console is on, but {variable} holds no password hash: set it to the output of "
    "feedsvc admin hash-password and restart.": (
        "Bảng điều hành đang bật nhưng {variable} không chứa mã băm mật khẩu: hãy đặt biến này "
        "bằng kết quả của lệnh feedsvc admin hash-password rồi khởi động lại."
    ),
    "Subscribers": "Người đăng ký",
    "Editions": "Các số bản tin",
    "Log": "Nhật ký",
    "Paused": "Tạm dừng",
    "Each source's last polls, oldest first: ✓ fetched, nothing new; + new entries; "
    "✗ failed; ⊘ 410 Gone.": (
        "Các lần lấy tin gần nhất của mỗi nguồn, cũ nhất trước: ✓ lấy được, không có tin mới; "
        "+ có tin mới; ✗ lỗi; ⊘ 410 Gone."
    ),
    "fetched, nothing new": "lấy được, không có tin mới",
    "new entries": "có tin mới",
    "failed": "lỗi",
    "410 Gone": "410 Gone (nguồn đã ngừng)",
    "Moved here from the configured {url}": "Đã chuyển tới đây từ địa chỉ cấu hình {url}",
    "Paused {when} by {who}": "Tạm dừng lúc {when} bởi {who}",
    "Last 20 polls": "20 lần lấy tin gần nhất",
    "not polled yet": "chưa lấy tin lần nào",
    "New entries per day, 30 days": "Tin mới mỗi ngày, 30 ngày",
    "{total} new entries in 30 days, at most {top} in a day": (
        "{total} tin mới trong 30 ngày, nhiều nhất {top} tin một ngày"
    ),
    "Poll now": "Lấy tin ngay",
    "Pause": "Tạm dừng",
    "Resume": "Tiếp tục",
    "Forget the moved URL": "Quay về địa chỉ đã cấu hình",
    "Queued: the next poll tick (within 15 seconds) fetches it.": (
        "Đã xếp hàng: lượt lấy tin kế tiếp (trong vòng 15 giây) sẽ lấy nguồn này."
    ),
    "Paused: no process polls it until it is resumed.": (
        "Đã tạm dừng: không tiến trình nào lấy tin nguồn này cho tới khi tiếp tục."
    ),
    "Resumed: it is polled on its schedule again.": (
        "Đã tiếp tục: nguồn được lấy tin lại theo lịch."
    ),
    "Back to the configured URL; queued for the next poll.": (
        "Đã quay về địa chỉ cấu hình; đã xếp hàng cho lượt lấy tin kế tiếp."
    ),
    "Search by address": "Tìm theo địa chỉ",
    "Category": "Chuyên mục",
    "Any": "Tất cả",
    "Search": "Tìm",
    "{n} subscribers match.": "{n} người đăng ký phù hợp.",
    "More than {n} subscribers match.": "Hơn {n} người đăng ký phù hợp.",
    "With the selected subscribers:": "Với những người đã chọn:",
    "Confirm": "Xác nhận",
    "Resend confirmation": "Gửi lại thư xác nhận",
    "Delete": "Xóa",
    "Pending": "Chờ xác nhận",
    "Active": "Đang nhận",
    "Unsubscribed": "Đã hủy",
    "Bounced": "Thư bị trả lại",
    "signed up {date}": "đăng ký ngày {date}",
    "confirmed {date}": "xác nhận ngày {date}",
    "{n} bounces": "{n} lần bị trả lại",
    "Confirmed: {ok}.": "Đã xác nhận: {ok}.",
    "Confirmation emails queued: {ok}.": "Đã xếp hàng thư xác nhận: {ok}.",
    "Unsubscribed: {ok}.": "Đã hủy đăng ký: {ok}.",
    "Deleted: {ok}.": "Đã xóa: {ok}.",
    "Not done: {failed} (see the log).": "Không thực hiện được: {failed} (xem nhật ký).",
    "First page, no filters": "Trang đầu, bỏ lọc",
    "Next page": "Trang sau",
    "Import and export": "Nhập và xuất",
    "The same CSV as feedsvc subscribers import and export: "
    "email,categories,schedule,locale[,status,created_at,confirmed_at].": (
        "Cùng định dạng CSV với feedsvc subscribers import và export: "
        "email,categories,schedule,locale[,status,created_at,confirmed_at]."
    ),
    "CSV file": "Tệp CSV",
    "They already opted in elsewhere (import as active)": (
        "Họ đã đồng ý ở nơi khác (nhập ở trạng thái đang nhận)"
    ),
    "Import": "Nhập",
    "Export every subscriber as CSV": "Xuất mọi người đăng ký ra CSV",
    "Delete subscribers": "Xóa người đăng ký",
    "This erases each address, its links and its queued emails for good. How many digests "
    "went out stays, without the address.": (
        "Thao tác này xóa hẳn từng địa chỉ, các liên kết và thư đang chờ gửi của nó. Số bản tin "
        "đã gửi vẫn được giữ, không kèm địa chỉ."
    ),
    "Delete for good": "Xóa hẳn",
    "Cancel": "Hủy bỏ",
    "Added as active: {n}": "Thêm ở trạng thái đang nhận: {n}",
    "Added as pending, confirmation queued: {n}": (
        "Thêm ở trạng thái chờ, đã xếp hàng thư xác nhận: {n}"
    ),
    "Kept as unsubscribed or bounced: {n}": "Giữ ở trạng thái đã hủy hoặc bị trả lại: {n}",
    "Already here, left as they are: {n}": "Đã có, giữ nguyên: {n}",
    "Rejected rows: {n}": "Dòng bị từ chối: {n}",
    "Back to the subscribers": "Về danh sách người đăng ký",
    "Subscribers per period": "Số người đăng ký mỗi kỳ",
    "How many subscribers each period's digest was planned for, per schedule.": (
        "Số người đăng ký mà bản tin của mỗi kỳ được gửi tới, theo từng lịch."
    ),
    "Web view:": "Xem trên web:",
    "No edition has been sent yet.": "Chưa gửi số bản tin nào.",
    "Older periods": "Các kỳ cũ hơn",
    "Every action taken in the console: when, which session from which address, what, to what.": (
        "Mọi thao tác trong bảng điều hành: lúc nào, phiên nào từ địa chỉ nào, làm gì, với cái gì."
    ),
    "Nothing yet.": "Chưa có gì.",
    "Older": "Cũ hơn",
    # web: reading the news (web/reading.py, templates/web/index.html, category.html, story.html)
    "Search the news": "Tìm tin",
    "Search, e.g. da nang": "Tìm, ví dụ: da nang",
    "All stories in {category}": "Mọi tin mục {category}",
    "No stories yet.": "Chưa có tin nào.",
    "Follow this category:": "Theo dõi chuyên mục này:",
    "Pages": "Trang",
    "Newer stories": "Tin mới hơn",
    "Older stories": "Tin cũ hơn",
    "Published": "Đăng lúc",
    "First seen here": "Có trên trang này từ",
    "Updated": "Cập nhật",
    "Read the original article": "Đọc bài gốc",
    "Categories:": "Chuyên mục:",
    "This page address is not valid": "Địa chỉ trang này không hợp lệ",
    "The link to this page of stories was changed or cut short.": (
        "Liên kết tới trang tin này đã bị sửa hoặc bị cắt ngắn."
    ),
    "Go to the newest stories": "Xem các tin mới nhất",
    # stories: series, related stories, other outlets (digest, feeds)
    "Read more": "Đọc thêm",
    "Also reported by": "Cũng đưa tin",
    "Part {n}": "Bài {n}",
    "In this series": "Cùng loạt bài",
    "Accents are optional: da nang finds Đà Nẵng.": (
        "Gõ có dấu hay không dấu đều được: da nang tìm ra Đà Nẵng."
    ),
    "Put a phrase in quotes; giao* finds every word that starts so.": (
        "Đặt cụm từ trong ngoặc kép; giao* tìm mọi từ bắt đầu như vậy."
    ),
    "Words to look for": "Từ cần tìm",
    "Results for": "Kết quả cho",
    "Nothing found. Try fewer words, or other spellings.": (
        "Không tìm thấy gì. Hãy thử ít từ hơn, hoặc cách viết khác."
    ),
    "Follow this search in a feed reader:": "Theo dõi tìm kiếm này bằng trình đọc tin:",
    "Nothing to search for in that: type a word.": "Không có gì để tìm: hãy gõ một từ.",
}

MESSAGES: dict[str, dict[str, str]] = {"vi": VI, "en": {key: key for key in VI}}


def translator(locale: str) -> Callable[[str], str]:
    """A ``_`` for templates; an unknown string shows as itself rather than failing."""
    table = MESSAGES.get(locale, MESSAGES["en"])
    return lambda text: table.get(text, text)


def schedule_title(config: Config, name: str, locale: str) -> str:
    """How people read a schedule: its configured ``title``, else its name translated
    ("daily" is "hằng ngày"), never a bare id where a title was given."""
    spec = config.newsletter.schedules.get(name)
    title = spec.title.get(locale) if spec is not None and spec.title is not None else None
    return title or translator(locale)(name)


def schedule_intro(config: Config, name: str, locale: str) -> str | None:
    """The schedule's optional ``intro`` line, in ``locale``."""
    spec = config.newsletter.schedules.get(name)
    return spec.intro.get(locale) if spec is not None and spec.intro is not None else None


def negotiate(accept_language: str | None, default: str) -> str:
    """The best of our locales for an Accept-Language header (RFC 9110 12.5.4)."""
    best, best_q = default, 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if language in LOCALES and q > best_q:
            best, best_q = language, q
    return best
